"""Tests of interval quality: is the miss rate what the nominal level promises?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class CoverageTest:
    n: int
    misses: int
    miss_rate: float
    p_value: float  # Kupiec proportion-of-failures likelihood ratio, chi-square(1)
    too_many_misses: bool  # miss rate above alpha AND significant


def kupiec_pof(misses: ArrayLike, alpha: float = 0.05, significance: float = 0.05) -> CoverageTest:
    """Kupiec's proportion-of-failures test of a miss indicator series against ``alpha``."""
    hits = np.asarray(misses, dtype=bool)
    if hits.ndim != 1 or len(hits) == 0:
        raise ValueError("need a non-empty 1-d series of misses")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n, x = len(hits), int(hits.sum())
    rate = x / n

    def log_likelihood(p: float) -> float:
        # 0 * log(0) = 0
        return (n - x) * (np.log1p(-p) if p < 1 else (0.0 if x == n else -np.inf)) + (
            x * np.log(p) if x > 0 else 0.0
        )

    ratio = -2.0 * (log_likelihood(alpha) - log_likelihood(rate))
    p_value = float(stats.chi2.sf(max(ratio, 0.0), df=1))
    return CoverageTest(n, x, rate, p_value, rate > alpha and p_value < significance)
