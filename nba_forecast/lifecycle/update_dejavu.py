"""The weekly step: games finished since production's analog database was last filled join
it, in a new candidate version (dedupe by game id; Dejavu's sliding window applies).

Dejavu's weight in the ensemble is refitted too (the others keep their proportions), so that
new analog data can change what serves: on the last ``REFIT_GAMES`` served games, from the
component forecasts logged when they were served (each made before its game's outcome was
known, so out of sample), when at least ``MIN_REFIT_GAMES`` such games are in the log.
Whether the result forecasts differently enough to deserve an A/B test is the policy's
comparison (``lifecycle.compare``)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.data.splits import order_dates
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.recalibrate import rows_of_training, served_rows
from nba_forecast.lifecycle.training import history_before
from nba_forecast.lifecycle.versions import load_model, register_candidate
from nba_forecast.models.inputs import design_matrix

logger = logging.getLogger(__name__)
REFIT_GAMES = 1200
MIN_REFIT_GAMES = 600
REFIT_LOOKBACK = dt.timedelta(days=730)


def served_component_forecasts(
    ctx: Context, as_of: dt.datetime, names: list[str], version: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The logged forecasts of each component (columns in ``names`` order) and the outcomes
    of the last ``REFIT_GAMES`` games served by versions trained like ``version`` (the same
    components); None with fewer than ``MIN_REFIT_GAMES``."""
    try:
        served = served_rows(ctx.log.joined(as_of - REFIT_LOOKBACK, as_of))
        joined = rows_of_training(ctx, served, version)
    except SQLAlchemyError as error:  # the analog update itself needs no log
        logger.warning("weights kept: cannot read the prediction log: %s", error)
        return None
    rows = []
    for parts, actual in zip(joined["components"], joined["actual"], strict=True):
        forecasts = json.loads(parts)
        if all(name in forecasts for name in names):
            rows.append([*(float(forecasts[name]) for name in names), float(actual)])
    if len(rows) < MIN_REFIT_GAMES:
        return None
    table = np.array(rows[-REFIT_GAMES:], dtype=np.float64)
    return table[:, :-1], table[:, -1]


def update_dejavu(ctx: Context, as_of: dt.datetime) -> StepResult:
    """Production plus the games finished after its analog database's newest date and
    before ``as_of``'s date -> candidate."""
    production = ctx.registry.resolve("production")
    manifest = ctx.registry.manifest(production)
    data = history_before(ctx.games.with_features(), as_of)
    since = manifest.data_window.get("analogs_to") or manifest.trained_to
    if since is not None:
        data = data[order_dates(data) > pd.Timestamp(since)]
    if data.empty:
        return StepResult(Step.UPDATE_DEJAVU, f"no games finished since {since}", status="not_due")
    X, y = design_matrix(data)
    current = load_model(ctx.registry, production)
    model, added = current.with_analog_games(X, y, data)
    last = order_dates(data).max().date().isoformat()
    detail = f"{added} games added to the analog database (through {last})"
    name = current.dejavu_name()
    served = (  # the log is read only when there is a share to refit
        served_component_forecasts(ctx, as_of, list(current.components), production)
        if added and name is not None
        else None
    )
    if served is not None and name is not None:
        model = model.reweighted(*served, component=name)
        detail += (
            f"; its weight refitted on {len(served[1])} served games: "
            f"{current.weights[name]:.2f} -> {model.weights[name]:.2f}"
        )
    if added == 0:
        return StepResult(Step.UPDATE_DEJAVU, detail, metrics={"games_added": 0}, status="not_due")
    version = register_candidate(
        ctx.registry,
        model,
        parent=production,
        reason=f"{Step.UPDATE_DEJAVU}: {detail}",
        data_window={**manifest.data_window, "analogs_to": last},
        metrics={"games_added": added, "weights": model.weights},
        made_by=Step.UPDATE_DEJAVU,
    )
    return StepResult(Step.UPDATE_DEJAVU, detail, version, {"games_added": added})
