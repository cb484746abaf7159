"""nba-forecast: NBA halftime margin forecasts, kept good in production.

The main names load on first use (``import nba_forecast`` stays light: the CLI and the
server import it first)::

    from nba_forecast import HalftimeEnsemble, forecast_games, load_model
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("nba-forecast")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

# name -> the module that defines it
_EXPORTS = {
    "HalftimeEnsemble": "nba_forecast.models.ensemble",
    "Persistence": "nba_forecast.models.baselines",
    "DampedPersistence": "nba_forecast.models.baselines",
    "LinearForecaster": "nba_forecast.models.baselines",
    "Dejavu": "nba_forecast.models.dejavu",
    "LSTMForecaster": "nba_forecast.models.lstm",
    "AbsoluteResidualConformal": "nba_forecast.models.conformal",
    "NotFittedError": "nba_forecast.models.base",
    "load_model": "nba_forecast.models.loading",
    "design_matrix": "nba_forecast.models.inputs",
    "forecast_games": "nba_forecast.forecast_table",
    "game_features": "nba_forecast.forecast_table",
    "read_games_table": "nba_forecast.forecast_table",
    "GameTableError": "nba_forecast.forecast_table",
    "load_shipped_games": "nba_forecast.data.shipped",
    "train_ensemble": "nba_forecast.lifecycle.training",
}
__all__ = [
    "AbsoluteResidualConformal",
    "DampedPersistence",
    "Dejavu",
    "GameTableError",
    "HalftimeEnsemble",
    "LSTMForecaster",
    "LinearForecaster",
    "NotFittedError",
    "Persistence",
    "__version__",
    "design_matrix",
    "forecast_games",
    "game_features",
    "load_model",
    "load_shipped_games",
    "read_games_table",
    "train_ensemble",
]

if TYPE_CHECKING:
    from nba_forecast.data.shipped import load_shipped_games
    from nba_forecast.forecast_table import (
        GameTableError,
        forecast_games,
        game_features,
        read_games_table,
    )
    from nba_forecast.lifecycle.training import train_ensemble
    from nba_forecast.models.base import NotFittedError
    from nba_forecast.models.baselines import DampedPersistence, LinearForecaster, Persistence
    from nba_forecast.models.conformal import AbsoluteResidualConformal
    from nba_forecast.models.dejavu import Dejavu
    from nba_forecast.models.ensemble import HalftimeEnsemble
    from nba_forecast.models.inputs import design_matrix
    from nba_forecast.models.loading import load_model
    from nba_forecast.models.lstm import LSTMForecaster


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nba_forecast' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
