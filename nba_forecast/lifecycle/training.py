"""Training the served ensemble from a game history, and the two steps that refresh it:
``update_dejavu`` (weekly: new finished games join the analog database) and ``retrain``
(monthly, when due: every component refitted on old + new games, the LSTM warm-started).

Games are split by date: the latest ``calibration_games`` calibrate the interval, the
``validation_games`` before them early-stop the LSTM and weight the components, the rest
train. Pre-game features are computed on the whole history (earlier games only).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.splits import order_dates
from nba_forecast.models.dejavu import Dejavu
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
            previous.warm_start = True
            components["lstm"] = previous
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(X, y, Xv, yv, parts["train"]).conformalize(Xc, yc)
    last = order_dates(data).iloc[-1].date().isoformat()
    logger.info("trained on %d games through %s; weights %s", len(data), last, ensemble.weights)
    return ensemble, TrainingWindow(last, len(data))


def update_dejavu(
    model_dir: Path, new_games: pd.DataFrame, history: pd.DataFrame, destination: Path
) -> tuple[Path, int]:
    """Copy ``model_dir`` with the finished ``new_games`` added to its Dejavu database
    (dedupe by game id, the database's sliding window applies). ``history`` (all games,
    including the new ones) gives the pre-game features. Returns the directory and how many
    games were added."""
    ensemble = HalftimeEnsemble.load(model_dir)
    dejavu = next((m for m in ensemble.components.values() if isinstance(m, Dejavu)), None)
    if dejavu is None:
        raise ValueError(f"{model_dir}: the ensemble has no Dejavu component")
    data = with_features(history)
    fresh = data[data["game_id"].isin(set(new_games["game_id"]))]
    fresh = fresh[~fresh["game_id"].isin(set(dejavu.ids_))]
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(model_dir, destination)
    if fresh.empty:
        return destination, 0
    X, y = design_matrix(fresh)
    dejavu.add_games(X, y, fresh)
    name = next(n for n, m in ensemble.components.items() if m is dejavu)
    shutil.rmtree(destination / "components" / name)
    dejavu.save(destination / "components" / name)
    return destination, len(fresh)


def retrain_due(
    last_trained: str | None,
    new_games: int,
    as_of: dt.datetime,
    *,
    min_days: int = 28,
    min_new_games: int = 300,
) -> tuple[bool, str]:
    """Due when at least ``min_days`` passed since the last training AND at least
    ``min_new_games`` finished games arrived since."""
    if last_trained is None:
        return True, "never trained"
    days = (as_of.date() - dt.date.fromisoformat(last_trained)).days
    due = days >= min_days and new_games >= min_new_games
    return due, (
        f"{days} days and {new_games} new games since {last_trained} "
        f"(rule: >= {min_days} days and >= {min_new_games} games)"
    )
