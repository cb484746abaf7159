"""The weekly step: games finished since production's analog database was last filled join
it, in a new candidate version (dedupe by game id; Dejavu's sliding window applies)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from nba_forecast.data.splits import order_dates
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.training import history_before
from nba_forecast.lifecycle.versions import load_model, register_candidate
from nba_forecast.models.inputs import design_matrix


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
        return StepResult(Step.UPDATE_DEJAVU, f"no games finished since {since}")
    X, y = design_matrix(data)
    model, added = load_model(ctx.registry, production).with_analog_games(X, y, data)
    last = order_dates(data).max().date().isoformat()
    detail = f"{added} games added to the analog database (through {last})"
    if added == 0:
        return StepResult(Step.UPDATE_DEJAVU, detail, metrics={"games_added": 0})
    version = register_candidate(
        ctx.registry,
        model,
        parent=production,
        reason=f"{Step.UPDATE_DEJAVU}: {detail}",
        data_window={**manifest.data_window, "analogs_to": last},
        metrics={"games_added": added},
    )
    return StepResult(Step.UPDATE_DEJAVU, detail, version, {"games_added": added})
