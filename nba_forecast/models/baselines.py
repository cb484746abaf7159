"""Baselines every report shows: persistence (m_24 = m_18) and damped persistence
(m_24 = a * m_18 + b, least squares on the training games)."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nba_forecast.models.base import Forecaster, check_margins, check_target


class Persistence(Forecaster):
    """The halftime margin equals the margin with 6:00 left in Q2. ``fit`` only checks input."""

    state_names: ClassVar[tuple[str, ...]] = ("fitted_",)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        check_target(y, len(check_margins(X)))
        self.fitted_ = True
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        return check_margins(X)[:, -1].copy()


class DampedPersistence(Forecaster):
    """m_24 = slope * m_18 + intercept: leads shrink (slope < 1), home teams gain."""

    state_names: ClassVar[tuple[str, ...]] = ("slope_", "intercept_")

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        margins = check_margins(X)
        target = check_target(y, len(margins))
        if len(margins) < 2 or np.ptp(margins[:, -1]) == 0:
            raise ValueError("damped persistence needs at least 2 games with different m_18")
        design = np.column_stack([margins[:, -1], np.ones(len(margins))])
        (slope, intercept), *_ = np.linalg.lstsq(design, target, rcond=None)
        self.slope_, self.intercept_ = float(slope), float(intercept)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        return self.slope_ * check_margins(X)[:, -1] + self.intercept_
