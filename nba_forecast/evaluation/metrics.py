"""Point and interval metrics for forecasts of the halftime margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _arrays(*values: ArrayLike) -> list[NDArray[np.float64]]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    shape = arrays[0].shape
    if len(shape) != 1 or shape[0] == 0:
        raise ValueError(f"expected non-empty 1-d arrays, got shape {shape}")
    for a in arrays[1:]:
        if a.shape != shape:
            raise ValueError(f"arrays differ in shape: {shape} vs {a.shape}")
    for a in arrays:
        if not np.isfinite(a).all():
            raise ValueError("metrics need finite values; got NaN or infinity")
    return arrays


def winkler_score(
    y: ArrayLike, lower: ArrayLike, upper: ArrayLike, alpha: float = 0.05
) -> NDArray[np.float64]:
    """Per-forecast interval score: width, plus 2/alpha times the miss distance."""
    y_, lo, hi = _arrays(y, lower, upper)
    below = np.clip(lo - y_, 0.0, None)
    above = np.clip(y_ - hi, 0.0, None)
    return (hi - lo) + (2.0 / alpha) * (below + above)


@dataclass(frozen=True)
class ForecastMetrics:
    n: int
    mae: float
    rmse: float
    bias: float  # mean of forecast - actual
    coverage: float | None = None
    mean_width: float | None = None
    winkler: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def forecast_metrics(
    y: ArrayLike,
    forecast: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    alpha: float = 0.05,
) -> ForecastMetrics:
    """MAE, RMSE, bias; with an interval also coverage, mean width and Winkler score."""
    y_, f = _arrays(y, forecast)
    error = f - y_
    point = {
        "n": len(y_),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(error.mean()),
    }
    if lower is None or upper is None:
        return ForecastMetrics(**point)  # type: ignore[arg-type]
    _, lo, hi = _arrays(y_, lower, upper)
    if (lo > hi).any():
        raise ValueError("interval lower bound above upper bound")
    return ForecastMetrics(
        **point,  # type: ignore[arg-type]
        coverage=float(((y_ >= lo) & (y_ <= hi)).mean()),
        mean_width=float((hi - lo).mean()),
        winkler=float(winkler_score(y_, lo, hi, alpha).mean()),
    )
