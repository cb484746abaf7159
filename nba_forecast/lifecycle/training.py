"""Training the served ensemble from a game history (bootstrap, retraining, the replay).

Games are split by date: the latest ``calibration_games`` calibrate the interval, the
``validation_games`` before them early-stop the LSTM and weight the components, the rest
train. Pre-game features are computed on the whole history (earlier games only).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.splits import order_dates
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


@dataclass(frozen=True)
class TrainingWindow:
    train_to: str
    games: int

    def as_dict(self) -> dict[str, object]:
        return {"trained_to": self.train_to, "games": self.games}


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
    last = order_dates(data).iloc[-1].date().isoformat()
    logger.info("trained on %d games through %s; weights %s", len(data), last, ensemble.weights)
    return ensemble, TrainingWindow(last, len(data))
