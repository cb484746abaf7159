"""Building a step's ``Context`` from the deployment's settings: what the CLI and the KFP
adapter do once per call (explicit arguments win over the settings)."""

from __future__ import annotations

from pathlib import Path

from nba_forecast.lifecycle.context import Context, GameSource
from nba_forecast.lifecycle.gitops import GitOpsTarget
from nba_forecast.lifecycle.policy import Policy
from nba_forecast.settings import Settings
from nba_forecast.storage.object_store import open_store
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry


def open_registry(settings: Settings, url: str | None = None) -> Registry:
    return Registry.open(
        url or settings.resolved_registry_url(), endpoint_url=settings.s3_endpoint_url
    )


def open_log(settings: Settings, url: str | None = None) -> PredictionLog:
    return PredictionLog.open(url or settings.resolved_database_url())


def shipped_games_plus(path: Path | None) -> GameSource:
    """The shipped games plus those of a margins file (bad games there skipped)."""

    def load():  # type: ignore[no-untyped-def]
        from nba_forecast.data.shipped import shipped_plus

        return shipped_plus(path)[0]

    return GameSource(load)


def build_context(
    settings: Settings,
    *,
    database_url: str | None = None,
    registry_url: str | None = None,
    gitops_repo: Path | None = None,
    environment: str | None = None,
    games: GameSource | None = None,
    policy: Policy | None = None,
) -> Context:
    registry_target = registry_url or settings.resolved_registry_url()
    return Context(
        registry=open_registry(settings, registry_target),
        games=games or shipped_games_plus(None),
        gitops=GitOpsTarget(
            gitops_repo or settings.resolved_gitops_repo(), environment or settings.environment
        ),
        state=open_store(registry_target, endpoint_url=settings.s3_endpoint_url),
        open_log=lambda: open_log(settings, database_url),
        policy=policy or Policy(),
    )
