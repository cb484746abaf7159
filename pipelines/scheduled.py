"""The scheduled pipelines, one per cadence of ``nba_forecast.lifecycle.cadence`` and named
after its step: monitor (hourly), decide_rollout (hourly), update_dejavu (weekly), retrain
(monthly); and recalibrate, which has no schedule (online adaptation is the recalibration,
see ``cadence``) and is run by hand. After a step that makes a version each runs the
chain of ``nba_forecast.lifecycle.policy.Policy`` (a test checks the two agree). Each stage
is a graph component (``*_stage``, reused by continuous_improvement); each pipeline runs
its stage under an exit handler that records the run (``pipelines.cluster.recorded``).
Versions travel between tasks as KFP ``Model`` artifacts (registry URL and version in the
metadata), so the UI shows each model's lineage.

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
from pipelines.cluster import in_cluster, on_gpu_node, recorded
from pipelines.parameters import documented

AS_OF = dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER


@dsl.pipeline(name="recalibrate-stage")
def recalibrate_stage(
    database_url: str,
    registry_url: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    window_days: float,
) -> None:
    collected = in_cluster(
        collect_predictions(database_url=database_url, as_of=as_of, window_days=window_days)
    )
    with dsl.If(collected.outputs["Output"] == True, name="coverage-drifted"):  # noqa: E712
        recalibrated = in_cluster(
            recalibrate_conformal(
                database_url=database_url,
                registry_url=registry_url,
                as_of=as_of,
                window_days=window_days,
            ),
            "medium",
        )
        with dsl.If(recalibrated.outputs["Output"] != "", name="recalibrated"):
            in_cluster(
                roll_forward(
                    model=recalibrated.outputs["model"],
                    gitops_repo=gitops_repo,
                    environment=environment,
                    as_of=as_of,
                )
            )


@dsl.pipeline(name="update-dejavu-stage")
def update_dejavu_stage(
    registry_url: str,
    games_uri: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    first_share: float,
) -> None:
    updated = in_cluster(
        update_dejavu(registry_url=registry_url, games_uri=games_uri, as_of=as_of), "medium"
    )
    with dsl.If(updated.outputs["Output"] != "", name="analogs-added"):
        in_cluster(
            rollout_ab(
                candidate=updated.outputs["model"],
                gitops_repo=gitops_repo,
                environment=environment,
                as_of=as_of,
                share=first_share,
                games_uri=games_uri,
            ),
            "medium",  # compares candidate and production on the recent games
        )


@dsl.pipeline(name="retrain-stage")
def retrain_stage(
    registry_url: str,
    games_uri: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    force: bool,
    first_share: float,
) -> None:
    retrained = on_gpu_node(
        retrain_lstm(registry_url=registry_url, games_uri=games_uri, as_of=as_of, force=force)
    )
    with dsl.If(retrained.outputs["Output"] != "", name="retrained"):
        validated = in_cluster(
            validate_challenger(
                games_uri=games_uri, candidate=retrained.outputs["model"], as_of=as_of
            ),
            "medium",
        )
        with dsl.If(validated.outputs["Output"] == True, name="validation-passed"):  # noqa: E712
            registered = in_cluster(
                register_version(
                    candidate=retrained.outputs["model"],
                    as_of=as_of,
                    report=validated.outputs["report"],
                )
            )
            in_cluster(
                rollout_ab(
                    candidate=retrained.outputs["model"],
                    gitops_repo=gitops_repo,
                    environment=environment,
                    as_of=as_of,
                    share=first_share,
                    report=validated.outputs["report"],
                    games_uri=games_uri,
                ),
                "medium",  # compares candidate and production on the recent games
            ).after(registered)


@dsl.pipeline(name="monitor", description="Hourly: metrics, label lag and alerts.")
@documented
def monitor_pipeline(
    database_url: str = "", registry_url: str = "", as_of: str = AS_OF, window_days: float = 7.0
) -> None:
    """Hourly: metrics, label lag and alerts."""
    with recorded("monitor", registry_url):
        in_cluster(
            monitor_performance(database_url=database_url, as_of=as_of, window_days=window_days)
        )


@dsl.pipeline(name="decide-rollout", description="Hourly: ramp, promote or roll back the A/B test.")
@documented
def decide_rollout_pipeline(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    games_uri: str = "",
) -> None:
    """Hourly: ramp, promote or roll back the A/B test."""
    with recorded("decide_rollout", registry_url):
        in_cluster(
            decide_rollout(
                database_url=database_url,
                registry_url=registry_url,
                gitops_repo=gitops_repo,
                environment=environment,
                as_of=as_of,
                games_uri=games_uri,
            ),
            "medium",  # a decision starts the waiting candidate: compared on the games
        )


@dsl.pipeline(name="recalibrate", description="Daily: coverage check, recalibrate on drift.")
@documented
def recalibrate_pipeline(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    window_days: float = 30.0,
) -> None:
    """Daily: coverage check, recalibrate on drift, roll forward."""
    with recorded("recalibrate", registry_url):
        recalibrate_stage(
            database_url=database_url,
            registry_url=registry_url,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            window_days=window_days,
        )


@dsl.pipeline(name="update-dejavu", description="Weekly: new games join the analog database.")
@documented
def update_dejavu_pipeline(
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    first_share: float = 0.1,
) -> None:
    """Weekly: new games join the analog database; an A/B test of the result."""
    with recorded("update_dejavu", registry_url):
        update_dejavu_stage(
            registry_url=registry_url,
            games_uri=games_uri,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            first_share=first_share,
        )


@dsl.pipeline(name="retrain", description="Monthly: retrain when due, validate, roll out.")
@documented
def retrain_pipeline(
    registry_url: str = "",
    games_uri: str = "",
    gitops_repo: str = "",
    environment: str = "",
    as_of: str = AS_OF,
    force: bool = False,
    first_share: float = 0.1,
) -> None:
    """Monthly: retrain when due (GPU node), validate, register, A/B test."""
    with recorded("retrain", registry_url):
        retrain_stage(
            registry_url=registry_url,
            games_uri=games_uri,
            gitops_repo=gitops_repo,
            environment=environment,
            as_of=as_of,
            force=force,
            first_share=first_share,
        )
