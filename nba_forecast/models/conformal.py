"""Conformal prediction intervals from ABSOLUTE residuals, symmetric around the forecast.

* Split conformal: half-width = the ceil((n+1)(1-alpha))-th smallest |y - f| of the
  calibration games (finite-sample valid for exchangeable games).
* Recency-weighted: calibration games weigh exp(-ln 2 * age / half_life) (age in games,
  the last one newest), the weighted quantile of Barber et al. (2023) with the test point's
  weight at +infinity, for games that drift.
* Online adaptive (ACI, Gibbs and Candes 2021): after each outcome,
  alpha_t+1 = alpha_t + gamma * (alpha - miss_t), and the new score joins the calibration set.

* Normalised (locally weighted, Lei et al. 2018): with a per-game scale s(x) the score is
  |y - f| / s(x) and the interval f +- q * s(x); the guarantee is the same (the scale is
  fitted on other games than the calibration ones). ``GameStateScale`` is such an s(x).

``AbsoluteResidualConformal`` works on outcomes and forecasts, not on a forecaster:
``conformalize(y_true, y_pred)`` (calibration games, oldest first), ``interval(y_pred)``,
online ``update(y_true, y_pred)``. ``HalftimeEnsemble`` holds one as its interval and gives
it the ensemble's own forecasts (``conformalize(X_cal, y_cal)``, ``predict_details(X)``);
``HalftimeEnsemble.recalibrated`` swaps in one calibrated on recent outcomes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.optimize import linprog

from nba_forecast.models.base import NotFittedError, read_meta, write_meta

CONFORMAL_FILE = "conformal.json"
ALPHA_BOUNDS = (0.001, 0.5)  # ACI may push alpha_t out of (0, 1); keep intervals finite


class AbsoluteResidualConformal:
    """Interval half-width from absolute residuals; see the module docstring."""

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        half_life: float | None = None,
        gamma: float = 0.005,
        max_scores: int = 5000,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if half_life is not None and half_life <= 0:
            raise ValueError("half_life must be positive (or None for equal weights)")
        if gamma < 0:
            raise ValueError("gamma must be >= 0")
        self.alpha = alpha
        self.half_life = half_life
        self.gamma = gamma
        self.max_scores = max_scores

    def conformalize(
        self, y_true: ArrayLike, y_pred: ArrayLike, scale: ArrayLike | None = None
    ) -> Self:
        """Calibrate on games in time order (oldest first); ``scale``: each game's s(x)."""
        y = np.asarray(y_true, dtype=np.float64)
        f = np.asarray(y_pred, dtype=np.float64)
        if y.ndim != 1 or y.shape != f.shape or len(y) == 0:
            raise ValueError(f"need equal, non-empty 1-d arrays, got {y.shape} and {f.shape}")
        if not (np.isfinite(y).all() and np.isfinite(f).all()):
            raise ValueError("calibration values must be finite")
        self.scores_ = (np.abs(y - f) / _scales(scale, len(y)))[-self.max_scores :]
        self.alpha_t_ = self.alpha
        self.n_updates_ = 0
        self.misses_ = 0
        return self

    def _require_calibrated(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError("conformalize(y_true, y_pred) must be called first")

    def half_width(self, finite: bool = False) -> float:
        """The current interval half-width at level 1 - alpha_t. Too few scores for that
        level give infinity (the finite-sample guarantee); ``finite`` returns the largest
        score instead, as a served interval must be a number."""
        self._require_calibrated()
        width = self._exact_half_width()
        return float(self.scores_.max()) if finite and math.isinf(width) else width

    def _exact_half_width(self) -> float:
        alpha = float(np.clip(self.alpha_t_, *ALPHA_BOUNDS))
        scores = self.scores_
        n = len(scores)
        if self.half_life is None:
            rank = math.ceil((n + 1) * (1 - alpha))
            return float("inf") if rank > n else float(np.sort(scores)[rank - 1])
        ages = np.arange(n)[::-1]
        weights = np.exp(-math.log(2) * ages / self.half_life)
        order = np.argsort(scores, kind="stable")
        # normalised with the test point's own weight (1, age 0) sitting at +infinity
        cumulative = np.cumsum(weights[order]) / (weights.sum() + 1.0)
        position = int(np.searchsorted(cumulative, 1 - alpha, side="left"))
        return float("inf") if position >= n else float(scores[order][position])

    def interval(
        self, y_pred: ArrayLike, scale: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        f = np.asarray(y_pred, dtype=np.float64)
        width = self.half_width(finite=True) * _scales(scale, f.size).reshape(f.shape)
        return f - width, f + width

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, scale: ArrayLike | None = None) -> Self:
        """Online step(s), in time order: adapt alpha_t to recent misses, keep the score."""
        self._require_calibrated()
        ys = np.atleast_1d(np.asarray(y_true, dtype=np.float64))
        fs = np.atleast_1d(np.asarray(y_pred, dtype=np.float64))
        if ys.shape != fs.shape or not (np.isfinite(ys).all() and np.isfinite(fs).all()):
            raise ValueError("update needs finite y_true and y_pred of equal length")
        scores = np.abs(ys - fs) / _scales(scale, len(ys))
        for score in scores:
            miss = score > self.half_width(finite=True)
            self.alpha_t_ += self.gamma * (self.alpha - float(miss))
            self.scores_ = np.append(self.scores_, score)[-self.max_scores :]
            self.n_updates_ += 1
            self.misses_ += int(miss)
        return self

    def state(self) -> tuple[dict[str, Any], dict[str, NDArray]]:
        self._require_calibrated()
        params = {
            "alpha": self.alpha,
            "half_life": self.half_life,
            "gamma": self.gamma,
            "max_scores": self.max_scores,
        }
        fitted = {"alpha_t": self.alpha_t_, "n_updates": self.n_updates_, "misses": self.misses_}
        return {"params": params, "fitted": fitted}, {"scores": self.scores_}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, NDArray]) -> Self:
        model = cls(**meta["params"])
        model.scores_ = np.asarray(arrays["scores"], dtype=np.float64)
        model.alpha_t_ = float(meta["fitted"]["alpha_t"])
        model.n_updates_ = int(meta["fitted"]["n_updates"])
        model.misses_ = int(meta["fitted"]["misses"])
        return model

    def save(self, directory: Path) -> Path:
        meta, arrays = self.state()
        write_meta(directory, self, meta, CONFORMAL_FILE)
        np.savez(directory / "conformal_scores.npz", allow_pickle=False, **arrays)
        return directory

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = read_meta(directory, cls, CONFORMAL_FILE)
        with np.load(directory / "conformal_scores.npz", allow_pickle=False) as arrays:
            return cls.from_state(meta, dict(arrays))


def _scales(scale: ArrayLike | None, n: int) -> NDArray[np.float64]:
    """Per-game scales (ones when None), checked: finite and positive."""
    if scale is None:
        return np.ones(n)
    s = np.atleast_1d(np.asarray(scale, dtype=np.float64)).ravel()
    if s.shape != (n,) or not np.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"scale must hold {n} finite positive numbers, got {s[:5]}...")
    return s


class GameStateScale:
    """s(x) for normalised conformal intervals: how wide a game's interval should be relative
    to a typical game's, from its state at 6:00 Q2 (``FEATURES``). A linear quantile
    regression of the absolute residual at the interval's level (so the normalised scores
    have the same upper quantile in calm and wild games), floored at ``floor`` times its
    median; then, in each of ``BINS`` equal-count bins of that prediction, a factor that
    makes the bin's normalised scores reach the same quantile (a line cannot follow the
    curve at the ends); divided by the median, so s = 1 is a typical game. Fitted on games
    that are not calibration games."""

    FEATURES = ("|m_18|", "path volatility", "|team strength|")
    BINS = 5

    def __init__(self, level: float = 0.95, floor: float = 0.25) -> None:
        if not 0 < level < 1:
            raise ValueError("level must be in (0, 1)")
        if not 0 < floor <= 1:
            raise ValueError("floor must be in (0, 1]")
        self.level = level
        self.floor = floor

    @staticmethod
    def features(X: ArrayLike) -> NDArray[np.float64]:
        """Intercept, |m_18|, mean |minute-to-minute margin change| over m_0..m_18, and
        |pre-game strength difference| (0 when the rows have no pre-game features)."""
        X_ = np.atleast_2d(np.asarray(X, dtype=np.float64))
        path = X_[:, :19]
        strength = np.abs(X_[:, 19]) if X_.shape[1] > 19 else np.zeros(len(X_))
        return np.column_stack(
            [np.ones(len(X_)), np.abs(path[:, 18]), np.abs(np.diff(path, axis=1)).mean(1), strength]
        )

    def fit(self, X: ArrayLike, abs_residuals: ArrayLike) -> Self:
        Z = self.features(X)
        r = np.asarray(abs_residuals, dtype=np.float64)
        if r.shape != (len(Z),) or len(r) < 2 * Z.shape[1] or not np.isfinite(r).all():
            raise ValueError(f"need one finite residual per row and >= {2 * Z.shape[1]} rows")
        self.coef_ = _quantile_regression(Z, np.abs(r), self.level)
        self.floor_ = self.floor * float(np.median(Z @ self.coef_))
        if not self.floor_ > 0:
            raise ValueError("the fitted scale is not positive for a typical game")
        raw = np.maximum(Z @ self.coef_, self.floor_)
        self.edges_ = np.quantile(raw, np.arange(1, self.BINS) / self.BINS)
        ratio = np.abs(r) / raw
        overall = float(np.quantile(ratio, self.level))
        bins = np.searchsorted(self.edges_, raw)
        self.factors_ = np.array(
            [
                float(np.quantile(ratio[bins == b], self.level)) / overall if overall > 0 else 1.0
                for b in range(self.BINS)
            ]
        )
        self.median_ = 1.0
        self.median_ = float(np.median(self(X)))
        return self

    def __call__(self, X: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "coef_"):
            raise NotFittedError("GameStateScale: call fit first")
        raw = np.maximum(self.features(X) @ self.coef_, self.floor_)
        factor = self.factors_[np.searchsorted(self.edges_, raw)]
        return np.asarray(np.maximum(raw * factor, self.floor_) / self.median_, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "floor": self.floor,
            "coef": [float(c) for c in self.coef_],
            "floor_value": self.floor_,
            "edges": [float(e) for e in self.edges_],
            "factors": [float(f) for f in self.factors_],
            "median": self.median_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        model = cls(float(state["level"]), float(state["floor"]))
        model.coef_ = np.asarray(state["coef"], dtype=np.float64)
        model.floor_ = float(state["floor_value"])
        model.edges_ = np.asarray(state["edges"], dtype=np.float64)
        model.factors_ = np.asarray(state["factors"], dtype=np.float64)
        model.median_ = float(state["median"])
        return model


def _quantile_regression(Z: NDArray[np.float64], y: NDArray[np.float64], level: float) -> NDArray:
    """Linear quantile regression (pinball loss) as a linear program:
    min level * sum(u) + (1 - level) * sum(v) with Z b + u - v = y, u, v >= 0."""
    n, k = Z.shape
    cost = np.concatenate([np.zeros(k), np.full(n, level), np.full(n, 1 - level)])
    equality = sparse.hstack([sparse.csr_matrix(Z), sparse.eye(n), -sparse.eye(n)])
    bounds = [(None, None)] * k + [(0, None)] * (2 * n)
    result = linprog(cost, A_eq=equality, b_eq=y, bounds=bounds, method="highs")
    if not result.success:
        raise ValueError(f"the scale's quantile regression failed: {result.message}")
    return np.asarray(result.x[:k], dtype=np.float64)
