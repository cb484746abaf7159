"""From a game table to model inputs: X = m_0..m_18 then pre-game features, y = m_24."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nba_forecast.data.pregame import FEATURES
from nba_forecast.data.schema import FORECAST_MINUTE, HALFTIME_MINUTE, margin_matrix


def design_matrix(
    games: pd.DataFrame, features: list[str] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``X`` (n, 19 + len(features)) and ``y`` (n,). ``features`` default: ``FEATURES`` when
    the table has them (see ``nba_forecast.data.pregame``), else none."""
    if features is None:
        features = [f for f in FEATURES if f in games.columns]
    missing = [f for f in features if f not in games.columns]
    if missing:
        raise ValueError(f"games lack feature column(s) {missing}; add pregame_features first")
    margins = margin_matrix(games, HALFTIME_MINUTE)
    X = np.column_stack([margins[:, : FORECAST_MINUTE + 1], games[features].to_numpy(float)])
    return X, margins[:, HALFTIME_MINUTE]
