"""collect -> drift? recalibrate; update Dejavu; retrain (GPU) -> validate -> passed?
register -> A/B rollout: the three scheduled stages in one run. Empty URLs mean the
embedded defaults of the step's settings.

No ``from __future__ import annotations`` here: KFP reads the annotations at runtime."""

from kfp import dsl

from pipelines.scheduled import dejavu_update, recalibration, retraining


@dsl.pipeline(
    name="continuous-improvement",
    description="Keep the halftime forecast good: recalibrate, refresh, retrain, roll out.",
)
def continuous_improvement(
    database_url: str = "",
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "production",
    as_of: str = dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
    window_days: float = 30.0,
    force_retrain: bool = False,
    first_share: float = 0.1,
) -> None:
    recalibration(
        database_url=database_url, registry_url=registry_url, as_of=as_of, window_days=window_days
    )
    dejavu_update(registry_url=registry_url, games_uri=games_uri, as_of=as_of)
    retraining(
        registry_url=registry_url,
        games_uri=games_uri,
        gitops_repo=gitops_repo,
        environment=environment,
        as_of=as_of,
        force=force_retrain,
        first_share=first_share,
    )
