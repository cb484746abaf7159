"""The scheduled pipelines, one per cadence of ``nba_forecast.lifecycle.cadence`` and named
after its step: monitor (hourly), decide_rollout (hourly), recalibrate (daily),
update_dejavu (weekly), retrain (monthly). After a step that makes a version each runs the
chain of ``nba_forecast.lifecycle.policy.Policy`` (a test checks the two agree).

No ``from __future__ import annotations`` here: KFP reads the annotations at runtime."""

from kfp import dsl

from components.collect_predictions import collect_predictions
from components.decide_rollout import decide_rollout
from components.monitor_performance import monitor_performance
from components.recalibrate_conformal import recalibrate_conformal
from components.register_version import register_version
from components.retrain_lstm import retrain_lstm
from components.roll_forward import roll_forward
from components.rollout_ab import rollout_ab
from components.update_dejavu import update_dejavu
from components.validate_challenger import validate_challenger
from pipelines.gpu import on_gpu_node

AS_OF = dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER


@dsl.pipeline(name="monitor", description="Hourly: metrics, label lag and alerts.")
def monitor_pipeline(database_url: str = "", as_of: str = AS_OF, window_days: float = 7.0) -> None:
    monitor_performance(
        database_url=database_url, as_of=as_of, window_days=window_days
    ).set_caching_options(False)


@dsl.pipeline(name="decide-rollout", description="Hourly: ramp, promote or roll back the A/B test.")
def decide_rollout_pipeline(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
) -> None:
    decide_rollout(
        database_url=database_url,
        registry_url=registry_url,
        gitops_repo=gitops_repo,
        environment=environment,
        as_of=as_of,
    ).set_caching_options(False)


@dsl.pipeline(name="recalibrate", description="Daily: coverage check, recalibrate on drift.")
def recalibrate_pipeline(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    window_days: float = 30.0,
) -> None:
    collected = collect_predictions(database_url=database_url, as_of=as_of, window_days=window_days)
    collected.set_caching_options(False)
    with dsl.If(collected.outputs["Output"] == True, name="coverage-drifted"):  # noqa: E712
        recalibrated = recalibrate_conformal(
            database_url=database_url,
            registry_url=registry_url,
            as_of=as_of,
            window_days=window_days,
        ).set_caching_options(False)
        with dsl.If(recalibrated.outputs["Output"] != "", name="recalibrated"):
            roll_forward(
                registry_url=registry_url,
                version=recalibrated.outputs["Output"],
                gitops_repo=gitops_repo,
                environment=environment,
                as_of=as_of,
            ).set_caching_options(False)


@dsl.pipeline(name="update-dejavu", description="Weekly: new games join the analog database.")
def update_dejavu_pipeline(
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    first_share: float = 0.1,
) -> None:
    updated = update_dejavu(registry_url=registry_url, games_uri=games_uri, as_of=as_of)
    updated.set_caching_options(False)
    with dsl.If(updated.outputs["Output"] != "", name="analogs-added"):
        rollout_ab(
            registry_url=registry_url,
            candidate=updated.outputs["Output"],
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            share=first_share,
        ).set_caching_options(False)


@dsl.pipeline(name="retrain", description="Monthly: retrain when due, validate, roll out.")
def retrain_pipeline(
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    force: bool = False,
    first_share: float = 0.1,
) -> None:
    retrained = on_gpu_node(
        retrain_lstm(registry_url=registry_url, games_uri=games_uri, as_of=as_of, force=force)
    )
    retrained.set_caching_options(False)
    with dsl.If(retrained.outputs["Output"] != "", name="retrained"):
        validated = validate_challenger(
            registry_url=registry_url,
            games_uri=games_uri,
            candidate=retrained.outputs["Output"],
            as_of=as_of,
        )
        validated.set_caching_options(False)
        with dsl.If(validated.outputs["Output"] == True, name="validation-passed"):  # noqa: E712
            registered = register_version(
                registry_url=registry_url,
                candidate=retrained.outputs["Output"],
                as_of=as_of,
                report=validated.outputs["report"],
            )
            registered.set_caching_options(False)
            rollout_ab(
                registry_url=registry_url,
                candidate=registered.output,
                gitops_repo=gitops_repo,
                environment=environment,
                as_of=as_of,
                share=first_share,
                report=validated.outputs["report"],
            ).set_caching_options(False)
