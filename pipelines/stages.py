"""Stages shared by several pipelines, as KFP sub-pipelines.

No ``from __future__ import annotations`` here: KFP reads the annotations at runtime."""

from kfp import dsl

from components.register_version import register_version
from components.retrain_lstm import retrain_lstm
from components.rollout_ab import rollout_ab
from components.validate_challenger import validate_challenger
from pipelines.gpu import on_gpu_node


@dsl.pipeline(name="retrain-validate-roll-out")
def retrain_validate_roll_out(
    registry_url: str,
    games_uri: str,
    gitops_repo: str,
    environment: str,
    as_of: str,
    force: bool,
    first_share: float,
) -> None:
    """Retrain on a GPU node when due -> validate -> passed? register -> A/B rollout."""
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
                report=validated.outputs["report"],
            )
            registered.set_caching_options(False)
            rollout_ab(
                registry_url=registry_url,
                candidate=registered.output,
                gitops_repo=gitops_repo,
                environment=environment,
                share=first_share,
                report=validated.outputs["report"],
            ).set_caching_options(False)
