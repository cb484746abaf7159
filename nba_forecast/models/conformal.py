"""Conformal prediction intervals from ABSOLUTE residuals, symmetric around the forecast.

* Split conformal: half-width = the ceil((n+1)(1-alpha))-th smallest |y - f| of the
  calibration games (finite-sample valid for exchangeable games).
* Recency-weighted: calibration games weigh exp(-ln 2 * age / half_life) (age in games,
  the last one newest), the weighted quantile of Barber et al. (2023) with the test point's
  weight at +infinity, for games that drift.
* Online adaptive (ACI, Gibbs and Candes 2021): after each outcome,
  alpha_t+1 = alpha_t + gamma * (alpha - miss_t), and the new score joins the calibration set.
  No single step size gamma suits both calm seasons (a large one only adds noise to the
  width) and a sudden change (a small one adapts too slowly), so by default several ACI
  "experts" run side by side, one per gamma in ``DEFAULT_GAMMAS``, and the served half-width
  is their average weighted by exp(-eta * their past Winkler loss), with a fixed share mixed
  back in so a dormant expert can take over (dynamically-tuned ACI, Gibbs and Candes 2022).
  On the real 2010-15 seasons this lowers the Winkler score by 0.07 points per game against
  gamma = 0.005 alone (DM p = 0.002), under the simulated drift by 0.11.
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

from nba_forecast.models.base import NotFittedError, PathLike, read_meta, write_meta

CONFORMAL_FILE = "conformal.json"
ALPHA_BOUNDS = (0.001, 0.5)  # ACI may push alpha_t out of (0, 1); keep intervals finite


DEFAULT_GAMMAS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02)


class AbsoluteResidualConformal:
    """Interval half-width from absolute residuals; see the module docstring. ``gamma``: one
    ACI step size; ``gammas``: several, aggregated (the default when neither is given)."""

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        half_life: float | None = None,
        gamma: float | None = None,
        gammas: tuple[float, ...] | None = None,
        eta: float = 0.003,
        share: float = 0.001,
        max_scores: int = 5000,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if half_life is not None and half_life <= 0:
            raise ValueError("half_life must be positive (or None for equal weights)")
        if gamma is not None and gammas is not None:
            raise ValueError("give gamma (one step size) or gammas (several), not both")
        steps = (
            tuple(gammas) if gammas is not None else (DEFAULT_GAMMAS if gamma is None else (gamma,))
        )
        if not steps or any(g < 0 for g in steps):
            raise ValueError("step sizes (gamma) must be >= 0")
        if eta < 0 or not 0 <= share < 1:
            raise ValueError("eta must be >= 0 and share in [0, 1)")
        self.alpha = alpha
        self.half_life = half_life
        self.gammas = tuple(float(g) for g in steps)
        self.eta = eta
        self.share = share
        self.max_scores = max_scores

    @property
    def gamma(self) -> float:
        """The step size of the expert that weighs most now (the only one with ``gamma``)."""
        if not hasattr(self, "log_weights_"):
            return self.gammas[0]
        return self.gammas[int(np.argmax(self.log_weights_))]

    def conformalize(
        self, y_true: ArrayLike, y_pred: ArrayLike, scale: ArrayLike | None = None
    ) -> Self:
        """Calibrate on games in time order (oldest first); ``scale``: each game's s(x)."""
        y = np.asarray(y_true, dtype=np.float64)
        f = np.asarray(y_pred, dtype=np.float64)
        if y.ndim != 1 or y.shape != f.shape or len(y) == 0:
            raise ValueError(f"need equal, non-empty 1-d arrays, got {y.shape} and {f.shape}")
        with np.errstate(over="ignore"):  # an overflow is refused just below
            scores = np.abs(y - f) / _scales(scale, len(y))
        if not np.isfinite(scores).all():  # finite values whose difference overflows
            raise ValueError("calibration values must be finite, and so their differences")
        self.scores_ = scores[-self.max_scores :]
        self.n_updates_ = 0
        self.misses_ = 0
        self.set_online_state(np.full(len(self.gammas), self.alpha), np.zeros(len(self.gammas)))
        return self

    def set_online_state(self, alphas: ArrayLike, log_weights: ArrayLike) -> Self:
        """Each expert's level alpha_t and log weight (e.g. carried over from the version
        this one replaces); the served half-width follows."""
        a = np.asarray(alphas, dtype=np.float64).ravel()
        w = np.asarray(log_weights, dtype=np.float64).ravel()
        if a.shape != (len(self.gammas),) or w.shape != a.shape:
            raise ValueError(f"need {len(self.gammas)} levels and log weights, got {a.shape}")
        if not (np.isfinite(a).all() and np.isfinite(w).all()):
            raise ValueError("online state must be finite")
        self.alphas_, self.log_weights_ = a.copy(), w - w.max()
        self._refresh()
        return self

    def continue_from(self, other: AbsoluteResidualConformal) -> Self:
        """Take over ``other``'s online state (levels and weights; with other experts, its
        weighted level for each of ours)."""
        other._require_calibrated()
        if other.gammas == self.gammas:
            return self.set_online_state(other.alphas_, other.log_weights_)
        n = len(self.gammas)
        return self.set_online_state(np.full(n, other.alpha_t_), np.zeros(n))

    @property
    def alpha_t_(self) -> float:
        """The experts' levels, weighted: what level the served interval is at, roughly."""
        return float(self._weights() @ self.alphas_)

    def _weights(self) -> NDArray[np.float64]:
        w = np.exp(self.log_weights_ - self.log_weights_.max())
        return np.asarray(w / w.sum(), dtype=np.float64)

    def _require_calibrated(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError("conformalize(y_true, y_pred) must be called first")

    def _refresh(self) -> None:
        """Recompute each expert's half-width and the served one (after any change)."""
        order = np.argsort(self.scores_, kind="stable")
        self._sorted = self.scores_[order]
        if self.half_life is None:
            self._cumulative = None
        else:
            n = len(self.scores_)
            weights = np.exp(-math.log(2) * np.arange(n)[::-1] / self.half_life)
            # normalised with the test point's own weight (1, age 0) sitting at +infinity
            self._cumulative = np.cumsum(weights[order]) / (weights.sum() + 1.0)
        self._widths = np.array([self._width_at(a) for a in self.alphas_])
        finite = np.where(np.isinf(self._widths), self._sorted[-1], self._widths)
        # relative to the narrowest, so equal experts give exactly their width
        self._served = float(finite.min() + self._weights() @ (finite - finite.min()))
        self._exact = float("inf") if np.isinf(self._widths).any() else self._served

    def _width_at(self, alpha_t: float) -> float:
        return self._quantile(float(np.clip(alpha_t, *ALPHA_BOUNDS)))

    def _quantile(self, alpha: float) -> float:
        """The conformal quantile of the scores for level ``alpha`` (inf: too few scores)."""
        n = len(self._sorted)
        if self._cumulative is None:
            rank = math.ceil((n + 1) * (1 - alpha))
            return float("inf") if rank > n else float(self._sorted[rank - 1])
        position = int(np.searchsorted(self._cumulative, 1 - alpha, side="left"))
        return float("inf") if position >= n else float(self._sorted[position])

    def min_alpha(self) -> float:
        """The smallest level whose interval the scores can give (1 / (n + 1) unweighted):
        below it the finite-sample quantile is beyond the largest score."""
        self._require_calibrated()
        if self._cumulative is None:
            return 1.0 / (len(self._sorted) + 1)
        return float(1.0 - self._cumulative[-1])

    def half_width(self, finite: bool = False) -> float:
        """The current interval half-width (in units of the scale s(x)). Too few scores for
        an expert's level give infinity (the finite-sample guarantee); ``finite`` uses the
        largest score for it instead, as a served interval must be a number."""
        self._require_calibrated()
        return self._served if finite else self._exact

    def half_width_at(self, alpha: float | None = None) -> float:
        """The half-width for level ``alpha``. None or the calibrated level: the served one
        (``half_width(finite=True)``, adapted online). Any other level: the split-conformal
        quantile of the stored scores (recency-weighted when calibrated so), without the
        online adaptation; ValueError for a level the scores cannot support."""
        self._require_calibrated()
        if alpha is None or alpha == self.alpha:
            return self.half_width(finite=True)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
        width = self._quantile(float(alpha))
        if math.isinf(width):
            raise ValueError(
                f"alpha={alpha:g} needs more calibration scores than the {len(self._sorted)} "
                f"kept; the smallest level this interval supports is alpha={self.min_alpha():.4g}"
            )
        return width

    def interval(
        self, y_pred: ArrayLike, scale: ArrayLike | None = None, alpha: float | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper bounds around the forecasts ``y_pred`` at level ``alpha`` (None:
        the calibrated level, as served)."""
        f = np.asarray(y_pred, dtype=np.float64)
        width = self.half_width_at(alpha) * _scales(scale, f.size).reshape(f.shape)
        return f - width, f + width

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, scale: ArrayLike | None = None) -> Self:
        """Online step(s), in time order: reweigh the experts by the Winkler loss their
        intervals would have had, move each one's level by its own misses, keep the score."""
        self._require_calibrated()
        ys = np.atleast_1d(np.asarray(y_true, dtype=np.float64))
        fs = np.atleast_1d(np.asarray(y_pred, dtype=np.float64))
        if ys.shape != fs.shape or not (np.isfinite(ys).all() and np.isfinite(fs).all()):
            raise ValueError("update needs finite y_true and y_pred of equal length")
        with np.errstate(over="ignore"):  # an overflow is refused just below
            scores = np.abs(ys - fs) / _scales(scale, len(ys))
        if not np.isfinite(scores).all():
            raise ValueError("update needs outcomes and forecasts whose differences are finite")
        gammas = np.array(self.gammas)
        for score in scores:
            widths = np.where(np.isinf(self._widths), self._sorted[-1], self._widths)
            self.misses_ += int(score > self._served)
            loss = 2 * widths + (2 / self.alpha) * np.clip(score - widths, 0.0, None)
            weights = np.exp(
                self.log_weights_ - self.eta * loss - (self.log_weights_ - self.eta * loss).max()
            )
            weights = (1 - self.share) * weights / weights.sum() + self.share / len(weights)
            self.log_weights_ = np.log(weights) - np.log(weights).max()
            self.alphas_ = self.alphas_ + gammas * (self.alpha - (score > widths))
            self.scores_ = np.append(self.scores_, score)[-self.max_scores :]
            self.n_updates_ += 1
            self._refresh()
        return self

    def state(self) -> tuple[dict[str, Any], dict[str, NDArray]]:
        self._require_calibrated()
        params = {
            "alpha": self.alpha,
            "half_life": self.half_life,
            "gammas": list(self.gammas),
            "eta": self.eta,
            "share": self.share,
            "max_scores": self.max_scores,
        }
        fitted = {
            "alphas": [float(a) for a in self.alphas_],
            "log_weights": [float(w) for w in self.log_weights_],
            "n_updates": self.n_updates_,
            "misses": self.misses_,
        }
        return {"params": params, "fitted": fitted}, {"scores": self.scores_}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, NDArray]) -> Self:
        params, fitted = dict(meta["params"]), meta["fitted"]
        if "gammas" in params:
            params["gammas"] = tuple(params["gammas"])
        model = cls(**params)  # states saved before experts: one "gamma", one "alpha_t"
        model.scores_ = np.asarray(arrays["scores"], dtype=np.float64)
        model.n_updates_ = int(fitted["n_updates"])
        model.misses_ = int(fitted["misses"])
        alphas = fitted.get("alphas", [fitted.get("alpha_t", model.alpha)])
        model.set_online_state(alphas, fitted.get("log_weights", np.zeros(len(alphas))))
        return model

    def save(self, directory: PathLike) -> Path:
        directory = Path(directory)
        meta, arrays = self.state()
        write_meta(directory, self, meta, CONFORMAL_FILE)
        np.savez(directory / "conformal_scores.npz", allow_pickle=False, **arrays)
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> Self:
        directory = Path(directory)
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
        # a bin without games (tied predictions) or scores keeps factor 1
        self.factors_ = np.array(
            [
                float(np.quantile(ratio[bins == b], self.level)) / overall
                if overall > 0 and (bins == b).any()
                else 1.0
                for b in range(self.BINS)
            ]
        )
        self.median_ = float(np.median(self._unnormalised(X)))
        return self

    def _unnormalised(self, X: ArrayLike) -> NDArray[np.float64]:
        raw = np.maximum(self.features(X) @ self.coef_, self.floor_)
        factor = self.factors_[np.searchsorted(self.edges_, raw)]
        return np.asarray(np.maximum(raw * factor, self.floor_), dtype=np.float64)

    def __call__(self, X: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "coef_"):
            raise NotFittedError("GameStateScale: call fit first")
        return self._unnormalised(X) / self.median_

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
