"""Baselines every report shows: persistence (m_24 = m_18) and damped persistence
(m_24 = a * m_18 + b, least squares on the training games), and a ridge regression.

They take ``fit``'s validation games and game info (the one forecaster signature) and ignore
them."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nba_forecast.models.base import (
    N_INPUT_MINUTES,
    FitExtras,
    Forecaster,
    check_margins,
)

M18 = N_INPUT_MINUTES - 1  # column of m_18; pre-game features follow it


class Persistence(Forecaster):
    """The halftime margin equals the margin with 6:00 left in Q2. ``fit`` only checks input."""

    state_names: ClassVar[tuple[str, ...]] = ("fitted_",)

    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        self.fitted_ = True

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        return check_margins(X)[:, M18].copy()


class DampedPersistence(Forecaster):
    """m_24 = slope * m_18 + intercept: leads shrink (slope < 1), home teams gain.
    Pre-game feature columns, if any, are ignored."""

    state_names: ClassVar[tuple[str, ...]] = ("slope_", "intercept_")

    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        margins, target = X, y
        if len(margins) < 2 or np.ptp(margins[:, M18]) == 0:
            raise ValueError("damped persistence needs at least 2 games with different m_18")
        design = np.column_stack([margins[:, M18], np.ones(len(margins))])
        (slope, intercept), *_ = np.linalg.lstsq(design, target, rcond=None)
        self.slope_, self.intercept_ = float(slope), float(intercept)

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        return self.slope_ * check_margins(X)[:, M18] + self.intercept_


class LinearForecaster(Forecaster):
    """Ridge regression of the 6-minute change on the margin path and pre-game features.

    Team strength enters linearly here; it is the one feature that clearly beats
    persistence on real games (see README)."""

    state_names: ClassVar[tuple[str, ...]] = ("coef_", "intercept_")

    def __init__(self, *, alpha: float = 10.0) -> None:
        self.alpha = alpha

    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        X_ = X
        change = y - X_[:, M18]
        mean_x, mean_c = X_.mean(axis=0), change.mean()
        centred = X_ - mean_x
        gram = centred.T @ centred + self.alpha * np.eye(X_.shape[1])
        self.coef_ = np.linalg.solve(gram, centred.T @ (change - mean_c))
        self.intercept_ = float(mean_c - mean_x @ self.coef_)

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        X_ = check_margins(X, n_columns=len(self.coef_))
        return X_[:, M18] + X_ @ self.coef_ + self.intercept_
