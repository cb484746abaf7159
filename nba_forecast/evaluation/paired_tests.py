"""Paired forecast comparison: the Diebold-Mariano test with the Harvey-Leybourne-Newbold
small-sample correction, on the same games."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class DMResult:
    statistic: float  # HLN-corrected DM statistic; negative: the candidate's loss is lower
    p_value: float  # one-sided: H1 = candidate has lower expected loss
    mean_loss_difference: float  # mean(candidate loss - reference loss)
    n: int


def p_text(p_value: float) -> str:
    """A p-value as people read it: "p < 0.0001" rather than "p = 0.0000"."""
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.4f}"


def diebold_mariano(
    candidate_errors: ArrayLike,
    reference_errors: ArrayLike,
    *,
    horizon: int = 1,
    power: int = 1,
) -> DMResult:
    """One-sided DM test that ``candidate`` beats ``reference`` (loss ``|e|**power``).

    ``horizon`` sets the lag window of the long-run variance (h - 1 autocovariances). Each
    game is one forecast, so the default is 1. The statistic is scaled by the HLN factor and
    compared to Student t with n - 1 degrees of freedom.
    """
    a = np.asarray(candidate_errors, dtype=np.float64)
    b = np.asarray(reference_errors, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired errors must be 1-d and the same length: {a.shape} vs {b.shape}")
    return diebold_mariano_losses(np.abs(a) ** power, np.abs(b) ** power, horizon=horizon)


def diebold_mariano_losses(
    candidate_loss: ArrayLike, reference_loss: ArrayLike, *, horizon: int = 1
) -> DMResult:
    """The DM test on paired losses (H1: the candidate's expected loss is lower)."""
    a = np.asarray(candidate_loss, dtype=np.float64)
    b = np.asarray(reference_loss, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired losses must be 1-d and the same length: {a.shape} vs {b.shape}")
    if len(a) < 3:
        raise ValueError(f"the DM test needs at least 3 paired forecasts, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("errors must be finite")
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    d = a - b
    n = len(d)
    mean = d.mean()
    centred = d - mean
    variance = centred @ centred / n
    for lag in range(1, horizon):
        variance += 2.0 * (centred[lag:] @ centred[:-lag]) / n
    if variance <= 1e-18:
        # the same difference every time: certain, not noisy
        p_value = 0.0 if mean < 0 else (1.0 if mean > 0 else 0.5)
        return DMResult(
            float(-np.inf if mean < 0 else np.inf if mean > 0 else 0.0), p_value, float(mean), n
        )
    dm = mean / np.sqrt(variance / n)
    hln = np.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = float(dm * hln)
    return DMResult(statistic, float(stats.t.cdf(statistic, df=n - 1)), float(mean), n)
