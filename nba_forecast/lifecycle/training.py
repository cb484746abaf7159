"""Training the served ensemble from a game history (bootstrap, retraining, the replay).

Games are split by date: the latest ``calibration_games`` calibrate the interval, the
``validation_games`` before them early-stop the LSTM and weight the components, the rest
train. Pre-game features are computed on the whole history (earlier games only).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.splits import order_dates
from nba_forecast.evaluation.metrics import forecast_metrics
from nba_forecast.models.base import N_INPUT_MINUTES
from nba_forecast.models.ensemble import HalftimeEnsemble, default_components
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.lstm import LSTMForecaster

logger = logging.getLogger(__name__)

DEFAULT_VALIDATION_GAMES = 1200
DEFAULT_CALIBRATION_GAMES = 1200


def with_features(games: pd.DataFrame) -> pd.DataFrame:
    """Games sorted by date with their pre-game features."""
    ordered = games.assign(_date=order_dates(games)).sort_values(["_date", "game_id"])
    ordered = ordered.drop(columns="_date").reset_index(drop=True)
    if "team_strength" in ordered.columns:
        ordered = ordered.drop(columns=["team_strength", "back_to_back"])
    return pd.concat([ordered, pregame_features(ordered)], axis=1)


def history_before(games: pd.DataFrame, as_of: dt.datetime) -> pd.DataFrame:
    """Games whose (ordering) date is before ``as_of``'s date."""
    cutoff = pd.Timestamp(as_of.date())
    return games[order_dates(games) < cutoff]


HELD_OUT_NOTE = (
    "the calibration games: no component was fitted on them (point forecasts out of "
    "sample); the interval was calibrated on them, so its coverage is near the target by "
    "construction"
)


@dataclass(frozen=True)
class TrainingWindow:
    """The games a training saw (first and last date, how many) and what the model scored
    on the latest of them, which no component was fitted on (``held_out``)."""

    train_to: str
    games: int
    train_from: str | None = None
    held_out: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"trained_from": self.train_from, "trained_to": self.train_to, "games": self.games}

    def metrics(self, model: HalftimeEnsemble) -> dict[str, Any]:
        """What a version trained in this window records as its metrics."""
        return {"weights": model.weights, "held_out": self.held_out}


def held_out_metrics(
    model: HalftimeEnsemble, calibration: pd.DataFrame, alpha: float
) -> dict[str, Any]:
    """The model and the persistence baseline (the margin at 6:00 of Q2, with the model's
    interval half-width around it) on the calibration games."""
    X, y = design_matrix(calibration)
    details = model.predict_details(X)
    persistence = X[:, N_INPUT_MINUTES - 1]
    half_width = details.upper - details.forecast
    dates = order_dates(calibration)
    return {
        "games": len(y),
        "from": dates.min().date().isoformat(),
        "to": dates.max().date().isoformat(),
        "note": HELD_OUT_NOTE,
        "model": forecast_metrics(
            y, details.forecast, details.lower, details.upper, alpha
        ).as_dict(),
        "persistence": forecast_metrics(
            y, persistence, persistence - half_width, persistence + half_width, alpha
        ).as_dict(),
    }


def train_ensemble(
    games: pd.DataFrame,
    *,
    validation_games: int = DEFAULT_VALIDATION_GAMES,
    calibration_games: int = DEFAULT_CALIBRATION_GAMES,
    warm_start_from: HalftimeEnsemble | None = None,
    random_state: int = 0,
) -> tuple[HalftimeEnsemble, TrainingWindow]:
    """Fit a new ensemble on ``games`` (a history, any order)."""
    data = with_features(games)
    if len(data) < validation_games + calibration_games + 1000:
        raise ValueError(
            f"{len(data)} games are too few: need {validation_games} validation + "
            f"{calibration_games} calibration + 1000 training games"
        )
    cal_start = len(data) - calibration_games
    val_start = cal_start - validation_games
    parts = {
        "train": data.iloc[:val_start],
        "validation": data.iloc[val_start:cal_start],
        "calibration": data.iloc[cal_start:],
    }
    X, y = design_matrix(parts["train"])
    Xv, yv = design_matrix(parts["validation"])
    Xc, yc = design_matrix(parts["calibration"])
    components = default_components(random_state)
    if warm_start_from is not None:
        previous = warm_start_from.components.get("lstm")
        if isinstance(previous, LSTMForecaster) and previous.n_features_in_ == X.shape[1]:
            # a copy: the model we start from (production, often) must not change
            components["lstm"] = previous.warm_copy()
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(X, y, Xv, yv, parts["train"]).conformalize(Xc, yc)
    dates = order_dates(data)
    first, last = dates.iloc[0].date().isoformat(), dates.iloc[-1].date().isoformat()
    held_out = held_out_metrics(ensemble, parts["calibration"], ensemble.alpha)
    logger.info(
        "trained on %d games %s to %s; weights %s; held-out MAE %.3f (persistence %.3f)",
        len(data),
        first,
        last,
        ensemble.weights,
        held_out["model"]["mae"],
        held_out["persistence"]["mae"],
    )
    return ensemble, TrainingWindow(last, len(data), first, held_out)
