"""Dejavu: forecast a game from the historical games whose margin path looked most alike
(after Kang, Spiliotis et al., "Deja vu: a data-centric forecasting approach through time
series cross-similarity").

Forecast = m_18 + the neighbours' aggregated 6-minute change (median, or distance-weighted
mean), plus a linear correction for the pre-game features (team strength, back-to-back),
fitted on leave-one-out residuals of the training games. Paths are compared on raw points
(no per-window z-scoring: the size of a lead matters) over the last ``window`` minutes,
optionally weighting recent minutes more.

The database grows with ``add_games`` (in place; dedupe by game id, newest wins) or
``with_games`` (a copy; games already known are skipped) and can keep a sliding window: at
most ``max_games`` games and none older than ``max_age_days`` before the newest.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from nba_forecast.models.base import (
    N_INPUT_MINUTES,
    FitExtras,
    Forecaster,
    check_margins,
    check_target,
)

Metric = Literal["l1", "l2"]
Aggregate = Literal["median", "weighted_mean"]
SEARCH_THREADS = min(4, os.cpu_count() or 1)
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One shared pool for analog searches (created on first use)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="dejavu-search")
    return _POOL


CORRECTION_SAMPLE = 4000  # training games used to fit the feature correction
EPOCH = np.datetime64("1970-01-01", "D")
INFO_COLUMNS = ["game_id", "game_date", "home_team", "away_team"]
ANALOG_COLUMNS = [
    "query",
    "rank",
    "game_id",
    "game_date",
    "home_team",
    "away_team",
    "distance",
    "m_18",
    "m_24",
]


def _info_arrays(info: pd.DataFrame | None, n: int, start: int) -> dict[str, NDArray]:
    """Game ids, dates (days since 1970, -1 unknown) and teams for the database."""
    if info is None:
        return {
            "ids_": np.array([f"game-{start + i}" for i in range(n)]),
            "days_": np.full(n, -1, dtype=np.int64),
            "home_": np.full(n, "", dtype="<U3"),
            "away_": np.full(n, "", dtype="<U3"),
        }
    if len(info) != n:
        raise ValueError(f"game info has {len(info)} rows for {n} games")
    missing = [c for c in INFO_COLUMNS if c not in info.columns]
    if missing:
        raise ValueError(f"game info lacks column(s) {missing}; expected {INFO_COLUMNS}")
    dates = pd.to_datetime(info["game_date"]).to_numpy().astype("datetime64[D]")
    days = np.where(np.isnat(dates), -1, (dates - EPOCH).astype(np.int64))
    return {
        "ids_": info["game_id"].astype(str).to_numpy().astype(str),
        "days_": days.astype(np.int64),
        "home_": info["home_team"].fillna("").astype(str).to_numpy().astype(str),
        "away_": info["away_team"].fillna("").astype(str).to_numpy().astype(str),
    }


class Dejavu(Forecaster):
    state_names: ClassVar[tuple[str, ...]] = (
        "paths_",
        "changes_",
        "m18_",
        "ids_",
        "days_",
        "home_",
        "away_",
        "coef_",
        "n_features_in_",
    )
    # the database: one row per historical game
    paths_: NDArray[np.float32]
    changes_: NDArray[np.float32]
    m18_: NDArray[np.float32]
    ids_: NDArray[Any]
    days_: NDArray[np.int64]
    home_: NDArray[Any]
    away_: NDArray[Any]
    coef_: NDArray[np.float64]
    n_features_in_: int

    def __init__(
        self,
        *,
        k: int = 800,
        window: int = 3,
        metric: Metric = "l1",
        recency: float = 0.0,
        aggregate: Aggregate = "weighted_mean",
        correct_features: bool = True,
        max_games: int | None = None,
        max_age_days: int | None = None,
    ) -> None:
        self.k = k
        self.window = window
        self.metric = metric
        self.recency = recency
        self.aggregate = aggregate
        self.correct_features = correct_features
        self.max_games = max_games
        self.max_age_days = max_age_days

    def _validate_params(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not 1 <= self.window <= N_INPUT_MINUTES:
            raise ValueError(f"window must be 1..{N_INPUT_MINUTES} minutes, got {self.window}")
        if self.metric not in ("l1", "l2"):
            raise ValueError(f"metric must be 'l1' or 'l2', got {self.metric!r}")
        if self.aggregate not in ("median", "weighted_mean"):
            raise ValueError(
                f"aggregate must be 'median' or 'weighted_mean', got {self.aggregate!r}"
            )
        if self.recency < 0:
            raise ValueError("recency must be >= 0")

    def _paths(self, X: NDArray[np.float64]) -> NDArray[np.float32]:
        """The last ``window`` minutes, each minute weighted by exp(-recency * age)."""
        path = X[:, N_INPUT_MINUTES - self.window : N_INPUT_MINUTES]
        weights = np.exp(-self.recency * np.arange(self.window)[::-1])
        if self.metric == "l2":
            weights = np.sqrt(weights)
        return (path * weights).astype(np.float32)

    # -- fitting and the database ------------------------------------------------------
    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        """Build the database from games ``X`` with halftime margins ``y``. ``info`` (columns
        game_id, game_date, home_team, away_team, aligned with X) makes analogs explainable
        and enables dedupe and the date window. ``X_val``/``y_val`` are not used."""
        self._validate_params()
        X_, y_ = X, y
        self.n_features_in_ = X_.shape[1]
        self.paths_ = self._paths(X_)
        self.changes_ = (y_ - X_[:, N_INPUT_MINUTES - 1]).astype(np.float32)
        self.m18_ = X_[:, N_INPUT_MINUTES - 1].astype(np.float32)
        for name, value in _info_arrays(extras.info, len(X_), 0).items():
            setattr(self, name, value)
        fit_ids = self.ids_.copy()
        self.coef_ = np.zeros(X_.shape[1] - N_INPUT_MINUTES)
        self._dedupe_and_window()
        if self.correct_features and self.coef_.size:
            self.coef_ = self._fit_correction(X_, y_, fit_ids)

    def _fit_correction(
        self, X: NDArray[np.float64], y: NDArray[np.float64], fit_ids: NDArray[np.str_]
    ) -> NDArray[np.float64]:
        """Least squares of leave-one-out analog residuals on the pre-game features."""
        rng = np.random.default_rng(0)
        sample = rng.choice(len(X), size=min(CORRECTION_SAMPLE, len(X)), replace=False)
        base = self._analog_forecast(X[sample], exclude=self._positions(fit_ids[sample]))
        features = X[sample, N_INPUT_MINUTES:]
        coef, *_ = np.linalg.lstsq(features, y[sample] - base, rcond=None)
        return np.asarray(coef, dtype=np.float64)

    def _positions(self, ids: NDArray[np.str_]) -> NDArray[np.int64]:
        """Database positions of game ids (-1 where absent), to leave a game out of its own
        neighbours."""
        where = {game_id: i for i, game_id in enumerate(self.ids_)}
        return np.array([where.get(game_id, -1) for game_id in ids], dtype=np.int64)

    def add_games(self, X: ArrayLike, y: ArrayLike, info: pd.DataFrame | None = None) -> Self:
        """Add finished games; a game id already present is replaced by the new row."""
        self._require_fitted()
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        y_ = check_target(y, len(X_))
        new = _info_arrays(info, len(X_), len(self.ids_))
        self.paths_ = np.concatenate([self.paths_, self._paths(X_)])
        self.changes_ = np.concatenate(
            [self.changes_, (y_ - X_[:, N_INPUT_MINUTES - 1]).astype(np.float32)]
        )
        self.m18_ = np.concatenate([self.m18_, X_[:, N_INPUT_MINUTES - 1].astype(np.float32)])
        for name, value in new.items():
            setattr(self, name, np.concatenate([getattr(self, name), value]))
        self._dedupe_and_window()
        return self

    def with_games(self, X: ArrayLike, y: ArrayLike, info: pd.DataFrame) -> tuple[Self, int]:
        """A copy with the finished games added (``self`` is untouched) and how many were
        added: games whose id is already in the database are skipped, the sliding window
        applies as in ``add_games``."""
        self._require_fitted()
        if info is None:
            raise ValueError("with_games needs the games' info (game_id, ...) to skip known ones")
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        y_ = check_target(y, len(X_))
        ids = _info_arrays(info, len(X_), 0)["ids_"]
        new = ~np.isin(ids, self.ids_)
        extended = self._copy()
        if new.any():
            extended.add_games(X_[new], y_[new], info.iloc[np.flatnonzero(new)])
        return extended, len(np.unique(ids[new]))

    def _copy(self) -> Self:
        """A copy sharing no array with ``self`` (the search cache is rebuilt on use)."""
        twin = copy.copy(self)
        twin.__dict__.pop("_search_cache", None)
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                setattr(twin, name, value.copy())
        return twin

    def _dedupe_and_window(self) -> None:
        n = len(self.ids_)
        # keep the last occurrence of each id
        _, last = np.unique(self.ids_[::-1], return_index=True)
        keep = np.zeros(n, dtype=bool)
        keep[n - 1 - last] = True
        if self.max_age_days is not None and (self.days_ >= 0).any():
            newest = self.days_.max()
            keep &= (self.days_ < 0) | (self.days_ >= newest - self.max_age_days)
        if self.max_games is not None and keep.sum() > self.max_games:
            order = np.lexsort((np.arange(n), self.days_))  # oldest first, then insertion order
            ranked = order[keep[order]]
            keep[ranked[: len(ranked) - self.max_games]] = False
        for name in ("paths_", "changes_", "m18_", "ids_", "days_", "home_", "away_"):
            setattr(self, name, getattr(self, name)[keep])

    @property
    def size(self) -> int:
        self._require_fitted()
        return len(self.ids_)

    # -- search and forecast -------------------------------------------------------------
    def _neighbours(
        self, paths: NDArray[np.float32], k: int, exclude: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Indices and distances of the k nearest database games, nearest first.

        Work is split into (query chunk, database block) tasks run on threads (numpy's
        element-wise ops and partitions release the GIL): many queries split by query,
        a few queries split the database; each block's top k are then merged.
        """
        db = self.paths_
        n = len(db)
        k = min(k, n - (1 if exclude is not None else 0))
        if k < 1:
            raise ValueError("the analog database is too small for this query")
        # ~2M distances (8 MB) per task stay in cache
        chunk = max(1, int(2e6 // n))
        few_queries = len(paths) <= chunk * SEARCH_THREADS
        n_blocks = min(SEARCH_THREADS, max(1, n // 100_000)) if few_queries else 1
        blocks = np.array_split(np.arange(n), n_blocks)
        columns, db_sq = self._search_arrays()

        def top_k(task: tuple[int, int]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
            start, block = task
            lo, hi = int(blocks[block][0]), int(blocks[block][-1]) + 1
            q = paths[start : start + chunk]
            d = self._distances(q, columns[:, lo:hi], db_sq[lo:hi])
            if exclude is not None:
                own = exclude[start : start + chunk] - lo
                inside = (own >= 0) & (own < hi - lo)
                d[np.flatnonzero(inside), own[inside]] = np.inf
            kk = min(k, hi - lo)
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
            return part + lo, np.take_along_axis(d, part, axis=1)

        tasks = [(s, b) for s in range(0, len(paths), chunk) for b in range(n_blocks)]
        results = list(_pool().map(top_k, tasks)) if len(tasks) > 1 else [top_k(tasks[0])]
        indices = np.empty((len(paths), k), dtype=np.int64)
        distances = np.empty((len(paths), k), dtype=np.float32)
        for i, start in enumerate(range(0, len(paths), chunk)):
            part = np.concatenate([r[0] for r in results[i * n_blocks : (i + 1) * n_blocks]], 1)
            part_d = np.concatenate([r[1] for r in results[i * n_blocks : (i + 1) * n_blocks]], 1)
            if n_blocks > 1:
                best = np.argpartition(part_d, k - 1, axis=1)[:, :k]
                part = np.take_along_axis(part, best, axis=1)
                part_d = np.take_along_axis(part_d, best, axis=1)
            order = np.argsort(part_d, axis=1, kind="stable")
            indices[start : start + chunk] = np.take_along_axis(part, order, axis=1)
            distances[start : start + chunk] = np.take_along_axis(part_d, order, axis=1)
        return indices, distances

    def _search_arrays(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The database by minute (contiguous rows) and its squared norms, cached until the
        database changes."""
        cache = getattr(self, "_search_cache", None)
        if cache is None or cache[0] is not self.paths_:
            columns = np.ascontiguousarray(self.paths_.T)
            cache = (self.paths_, columns, (self.paths_**2).sum(axis=1))
            self._search_cache = cache
        return cache[1], cache[2]

    def _distances(
        self, q: NDArray[np.float32], columns: NDArray[np.float32], db_sq: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """Distances (queries x database), built minute by minute in place: no 3-d
        temporary, so memory stays at one float32 per pair."""
        if self.metric == "l2":
            squared = (q**2).sum(axis=1)[:, None] + db_sq[None, :] - 2 * q @ columns
            return np.sqrt(np.maximum(squared, 0, out=squared), out=squared)
        d = np.abs(columns[0][None, :] - q[:, :1])
        buffer = np.empty_like(d)
        for minute in range(1, columns.shape[0]):
            np.subtract(columns[minute][None, :], q[:, minute : minute + 1], out=buffer)
            np.abs(buffer, out=buffer)
            d += buffer
        return d

    def _analog_forecast(
        self, X: NDArray[np.float64], exclude: NDArray[np.int64] | None = None
    ) -> NDArray[np.float64]:
        paths = self._paths(X)
        indices, distances = self._neighbours(paths, self.k, exclude)
        if exclude is None and len(X) == 1:
            # one query (serving): its analogs are the first of these neighbours
            self._last_search = (paths.tobytes(), indices, distances)
        changes = self.changes_[indices].astype(np.float64)
        if self.aggregate == "median":
            change = np.median(changes, axis=1)
        else:
            weights = 1.0 / (distances.astype(np.float64) + 1.0)
            change = (weights * changes).sum(axis=1) / weights.sum(axis=1)
        return X[:, N_INPUT_MINUTES - 1] + change

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Halftime-margin forecasts; ``analogs(X)`` gives the games behind them."""
        self._require_fitted()
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        return self._analog_forecast(X_) + X_[:, N_INPUT_MINUTES:] @ self.coef_

    def analogs(self, X: ArrayLike, n_analogs: int = 5) -> pd.DataFrame:
        """The closest historical games to each query, nearest first."""
        self._require_fitted()
        if n_analogs < 1:
            raise ValueError(f"n_analogs must be at least 1, got {n_analogs}")
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        indices, distances = self._neighbours(self._paths(X_), n_analogs)
        flat = indices.ravel()
        days = self.days_[flat]
        dates = [None if d < 0 else EPOCH_DATE + dt.timedelta(days=int(d)) for d in days]
        return pd.DataFrame(
            {
                "query": np.repeat(np.arange(len(X_)), indices.shape[1]),
                "rank": np.tile(np.arange(1, indices.shape[1] + 1), len(X_)),
                "game_id": self.ids_[flat],
                "game_date": dates,
                "home_team": self.home_[flat],
                "away_team": self.away_[flat],
                "distance": distances.ravel().astype(float),
                "m_18": self.m18_[flat].astype(float),
                "m_24": (self.m18_[flat] + self.changes_[flat]).astype(float),
            },
            columns=ANALOG_COLUMNS,
        )

    def analog_records(self, X: ArrayLike, n_analogs: int = 5) -> list[dict[str, Any]]:
        """``analogs`` of one query as plain dicts (no DataFrame: the serving path)."""
        self._require_fitted()
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        if len(X_) != 1 or n_analogs < 1:
            raise ValueError("analog_records takes one query and n_analogs >= 1")
        paths = self._paths(X_)
        last = getattr(self, "_last_search", None)
        if last is not None and last[0] == paths.tobytes() and last[1].shape[1] >= n_analogs:
            indices, distances = last[1][:, :n_analogs], last[2][:, :n_analogs]
        else:
            indices, distances = self._neighbours(paths, n_analogs)
        return [
            {
                "query": 0,
                "rank": rank,
                "game_id": str(self.ids_[i]),
                "game_date": None
                if self.days_[i] < 0
                else str(EPOCH_DATE + dt.timedelta(days=int(self.days_[i]))),
                "home_team": str(self.home_[i]),
                "away_team": str(self.away_[i]),
                "distance": float(d),
                "m_18": float(self.m18_[i]),
                "m_24": float(self.m18_[i] + self.changes_[i]),
            }
            for rank, (i, d) in enumerate(zip(indices[0], distances[0], strict=True), 1)
        ]


EPOCH_DATE = dt.date(1970, 1, 1)
