"""The lifecycle steps as KFP components call them: URLs and paths as strings (empty means
the deployment's settings, from the ConfigMap and Secrets in the task's environment), and a
metrics object with ``log_metric``. One call per component; the logic stays in the steps.
(No KFP import here: the package runs without the SDK.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from nba_forecast.lifecycle.context import Context, StepResult, parse_as_of
from nba_forecast.lifecycle.policy import Step


class MetricsSink(Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


def component_context(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    games_uri: str = "",
) -> Context:
    """The step's context, built once from the settings and the pipeline's parameters."""
    from nba_forecast.lifecycle.deployment import build_context, shipped_games_plus
    from nba_forecast.settings import Settings

    return build_context(
        Settings(),
        database_url=database_url or None,
        registry_url=registry_url or None,
        gitops_repo=Path(gitops_repo) if gitops_repo else None,
        environment=environment or None,
        games=shipped_games_plus(Path(games_uri) if games_uri else None),
    )


def run_component(
    step: str,
    as_of: str,
    metrics: MetricsSink | None = None,
    *,
    deployment: dict[str, str] | None = None,
    **options: Any,
) -> StepResult:
    """Run one step (waiting steps are skipped as the policy says) and log its metrics."""
    from nba_forecast.lifecycle.run import produce

    ctx = component_context(**(deployment or {}))
    result = produce(ctx, Step(step), parse_as_of(as_of), **options)
    if metrics is not None:
        for name, value in result.metrics.items():
            if isinstance(value, int | float) and value == value:  # skip NaN
                metrics.log_metric(name, float(value))
    return result
