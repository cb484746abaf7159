"""Compile every pipeline and check what the cluster will run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler

from components import GPU_IMAGE, IMAGE
from nba_forecast.lifecycle.cadence import CADENCES
from nba_forecast.lifecycle.policy import Policy, Step
from pipelines import COMPONENT_OF_STEP, pipelines

NO_CACHE = {
    "collect-predictions",
    "monitor-performance",
    "rollout-ab",
    "recalibrate-conformal",
    "update-dejavu",
    "retrain-lstm",
    "validate-challenger",
    "register-version",
    "decide-rollout",
    "roll-forward",
}


def compiled(name: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(pipelines()[name], str(path))
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def all_tasks(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every task of the pipeline and its sub-DAGs (names repeat across DAGs)."""
    tasks = list(spec["root"]["dag"]["tasks"].items())
    for component in spec["components"].values():
        tasks.extend(component.get("dag", {}).get("tasks", {}).items())
    return tasks


@pytest.mark.parametrize("name", list(pipelines()))
def test_every_pipeline_compiles_with_our_images_and_placeholder(name: str, tmp_path: Path) -> None:
    spec, _ = compiled(name, tmp_path)
    for executor, body in spec["deploymentSpec"]["executors"].items():
        container = body["container"]
        expected = GPU_IMAGE if executor == "exec-retrain-lstm" else IMAGE
        assert container["image"] == expected, executor
        assert "pip install" not in " ".join(container.get("command", [])), executor
    assert spec["root"]["inputDefinitions"]["parameters"]["as_of"]["defaultValue"] == (
        "{{$.pipeline_job_schedule_time_utc}}"
    )
    for task_name, task in all_tasks(spec):
        if task_name in NO_CACHE:
            assert not task.get("cachingOptions", {}).get("enableCache"), task_name


def test_continuous_improvement_gates(tmp_path: Path) -> None:
    spec, _ = compiled("continuous_improvement", tmp_path)
    tasks = all_tasks(spec)
    gates = {
        t["taskInfo"]["name"]: t["triggerPolicy"]["condition"]
        for _, t in tasks
        if "triggerPolicy" in t
    }
    assert set(gates) == {
        "coverage-drifted",
        "recalibrated",
        "analogs-added",
        "retrained",
        "validation-passed",
    }
    assert "collect-predictions-Output" in gates["coverage-drifted"]
    assert "retrain-lstm-Output" in gates["retrained"] and "!= ''" in gates["retrained"]
    assert "validate-challenger-Output" in gates["validation-passed"]
    # rollout only inside the validation gate, which is inside the retrained gate
    nested = spec["components"]
    passed = next(
        c for c in nested.values() if "register-version" in c.get("dag", {}).get("tasks", {})
    )
    assert "rollout-ab" in passed["dag"]["tasks"]


def test_one_pipeline_per_cadence_named_after_its_step() -> None:
    assert {c.step.value for c in CADENCES} | {"continuous_improvement"} == set(pipelines())


@pytest.mark.parametrize("step", [Step.RECALIBRATE, Step.UPDATE_DEJAVU, Step.RETRAIN])
def test_pipeline_runs_the_policy_chain(step: Step, tmp_path: Path) -> None:
    """The KFP pipeline of a step that makes a version runs exactly the chain that the CLI
    and the replay run (``Policy.chain``), in nested gates."""
    spec, _ = compiled(step.value, tmp_path)
    components = {name for name, _ in all_tasks(spec) if not name.startswith("condition-")}
    expected = {COMPONENT_OF_STEP[s].replace("_", "-") for s in (step, *Policy().chain(step))}
    if step is Step.RECALIBRATE:
        expected.add("collect-predictions")  # the drift gate before it
    assert components == expected


@pytest.mark.parametrize("name", ["continuous_improvement", "retrain"])
def test_retrain_runs_on_a_gpu_node(name: str, tmp_path: Path) -> None:
    spec, platform = compiled(name, tmp_path)
    resources = spec["deploymentSpec"]["executors"]["exec-retrain-lstm"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-retrain-lstm"]
    assert k8s["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
    assert k8s["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert k8s["activeDeadlineSeconds"] == "7200"
    retrain = dict(all_tasks(spec))["retrain-lstm"]
    assert retrain["retryPolicy"]["maxRetryCount"] == 2
