"""The scheduled stages in one run: recalibrate, update Dejavu, retrain -> validate ->
register -> A/B rollout, under one exit handler. Empty URLs mean the deployment's settings.

No ``from __future__ import annotations`` here: KFP reads the annotations at runtime."""

from kfp import dsl

from pipelines.cluster import recorded
from pipelines.parameters import documented
from pipelines.scheduled import recalibrate_stage, retrain_stage, update_dejavu_stage


@dsl.pipeline(
    name="continuous-improvement",
    description="Keep the halftime forecast good: recalibrate, refresh, retrain, roll out.",
)
@documented
def continuous_improvement(
    database_url: str = "",
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
    window_days: float = 30.0,
    force_retrain: bool = False,
    first_share: float = 0.1,
) -> None:
    """Keep the halftime forecast good: recalibrate, refresh, retrain, roll out."""
    with recorded("continuous_improvement", registry_url):
        recalibrated = recalibrate_stage(
            database_url=database_url,
            registry_url=registry_url,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            window_days=window_days,
        ).set_caching_options(False)
        updated = update_dejavu_stage(
            registry_url=registry_url,
            games_uri=games_uri,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            first_share=first_share,
        ).after(recalibrated)
        updated.set_caching_options(False)
        retrain_stage(
            registry_url=registry_url,
            games_uri=games_uri,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            force=force_retrain,
            first_share=first_share,
        ).after(updated).set_caching_options(False)
