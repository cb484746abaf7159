"""collect -> drift? recalibrate; update Dejavu; retrain (GPU) -> validate -> passed?
register -> A/B rollout. Empty URLs mean the embedded defaults of the step's settings."""

from kfp import dsl

from components.collect_predictions import collect_predictions
from components.recalibrate_conformal import recalibrate_conformal
from components.update_dejavu import update_dejavu
from pipelines.stages import retrain_validate_roll_out


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
    collected = collect_predictions(database_url=database_url, as_of=as_of, window_days=window_days)
    collected.set_caching_options(False)  # new outcomes arrive between runs
    with dsl.If(collected.outputs["Output"] == True, name="coverage-drifted"):  # noqa: E712
        recalibrate_conformal(
            database_url=database_url,
            registry_url=registry_url,
            as_of=as_of,
            window_days=window_days,
        ).set_caching_options(False)
    update_dejavu(registry_url=registry_url, games_uri=games_uri, as_of=as_of).set_caching_options(
        False
    )
    retrain_validate_roll_out(
        registry_url=registry_url,
        games_uri=games_uri,
        gitops_repo=gitops_repo,
        environment=environment,
        as_of=as_of,
        force=force_retrain,
        first_share=first_share,
    )
