"""The first step of a deployment: train on the known games and make the result
production (version 1), with its routing committed."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.promotion import publish_routing
from nba_forecast.lifecycle.training import TrainingWindow, train_ensemble
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.storage.registry import RegistryError


def bootstrap(
    ctx: Context,
    as_of: dt.datetime,
    *,
    through_season: int | None = None,
    trained: tuple[HalftimeEnsemble, TrainingWindow] | None = None,
) -> StepResult:
    """Train on the games (through ``through_season``), or take an already ``trained``
    model, and register it as production. Only an empty registry may be bootstrapped."""
    if "production" in ctx.registry.aliases():
        raise RegistryError(
            f"production already exists ({ctx.registry.resolve('production')}); "
            "bootstrap only starts an empty registry"
        )
    if trained is None:
        games = ctx.games.games()
        if through_season is not None:
            games = games[games["season"].astype(int) <= through_season]
        trained = train_ensemble(games)
    model, window = trained
    with tempfile.TemporaryDirectory() as tmp:
        manifest = ctx.registry.register(
            model.save(Path(tmp) / "v1"),
            data_window=window.as_dict(),
            metrics=window.metrics(model),
            made_by=Step.BOOTSTRAP,
        )
    ctx.registry.promote("production", manifest.version, reason=Step.BOOTSTRAP.value)
    publish_routing(ctx, f"bootstrap: production {manifest.version}")
    detail = (
        f"production {manifest.version} "
        f"(trained on {window.games:,} games through {window.train_to})"
    )
    return StepResult(Step.BOOTSTRAP, detail, manifest.version, {"training_games": window.games})
