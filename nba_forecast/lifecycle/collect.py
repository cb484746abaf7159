"""Collect: the production forecasts with their outcomes, for a window ending at ``as_of``,
with the coverage-drift test of what users were served.

Only outcomes recorded by ``as_of`` count, so re-running with the same ``as_of`` returns the
same rows however many outcomes arrived since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from nba_forecast.lifecycle.recalibrate import DriftTest, coverage_drift
from nba_forecast.storage.prediction_log import PredictionLog


@dataclass
class Collection:
    start: dt.datetime
    as_of: dt.datetime
    joined: pd.DataFrame  # one row per prediction with its outcome
    metrics: pd.DataFrame  # per model version and arm
    drift: DriftTest  # on the served (non-shadow) forecasts


def collect(
    log: PredictionLog, as_of: dt.datetime, *, window_days: float = 30.0, min_games: int = 100
) -> Collection:
    start = as_of - dt.timedelta(days=window_days)
    joined = log.joined(start, as_of)
    served = joined[joined["arm"] != "shadow"].drop_duplicates("game_id")
    drift = coverage_drift(served, min_games=min_games)
    return Collection(start, as_of, joined, log.window_metrics(start, as_of), drift)
