"""Collect: the production forecasts with their outcomes, for a window ending at ``as_of``,
with the coverage-drift test of what users were served.

Only outcomes recorded by ``as_of`` count, so re-running with the same ``as_of`` returns the
same rows however many outcomes arrived since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.recalibrate import DriftTest, coverage_drift, served_rows


@dataclass
class Collection:
    start: dt.datetime
    as_of: dt.datetime
    joined: pd.DataFrame  # one row per prediction with its outcome
    metrics: pd.DataFrame  # per model version and arm
    drift: DriftTest  # on the served (non-shadow) forecasts

    @property
    def drifted(self) -> bool:
        return self.drift.drifted


def collect(
    ctx: Context, as_of: dt.datetime, *, window_days: float = 30.0, min_games: int = 100
) -> StepResult:
    start = as_of - dt.timedelta(days=window_days)
    joined = ctx.log.joined(start, as_of)
    drift = coverage_drift(served_rows(joined), min_games=min_games)
    collection = Collection(start, as_of, joined, ctx.log.window_metrics(start, as_of), drift)
    return StepResult(
        Step.COLLECT,
        f"{len(joined)} rows; {drift.reason}",
        metrics={
            "rows": len(joined),
            "served_games": drift.n,
            "miss_rate": drift.miss_rate,
            "drift_p_value": drift.p_value,
        },
        report=collection,
    )
