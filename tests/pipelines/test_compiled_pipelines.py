"""Compile every pipeline and check what the cluster will run: images, the schedule
placeholder, gates, the policy chain, the GPU node, and (walking every executor) the
environment from the ConfigMap and Secrets, resources and caching."""

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
from pipelines.cluster import RUN_AS_USER, SECRETS, SETTINGS_CONFIGMAP, SETTINGS_KEYS

EXIT_TASK = "record-run"


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


def container_tasks(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Tasks that run a container (not sub-DAGs)."""
    return [
        (name, task)
        for name, task in all_tasks(spec)
        if "executorLabel" in spec["components"][task["componentRef"]["name"]]
    ]


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


@pytest.mark.parametrize("name", list(pipelines()))
def test_every_executor_gets_the_cluster_environment_resources_and_no_cache(
    name: str, tmp_path: Path
) -> None:
    """Item 6 of issue 11: a task without its configuration, resources, security context
    or with caching on (every task reads or changes live state) fails here."""
    spec, platform = compiled(name, tmp_path)
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor, body in spec["deploymentSpec"]["executors"].items():
        config = k8s.get(executor)
        assert config, f"{executor}: no Kubernetes config (no environment)"
        (configmap,) = config["configMapAsEnv"]
        assert configmap["configMapName"] == SETTINGS_CONFIGMAP and not configmap["optional"]
        assert {p["envVar"] for p in configmap["keyToEnv"]} == set(SETTINGS_KEYS), executor
        secrets = {s["secretName"]: s for s in config["secretAsEnv"]}
        for secret in SECRETS:
            got = secrets[secret.name]
            assert {p["secretKey"]: p["envVar"] for p in got["keyToEnv"]} == secret.keys
            assert bool(got.get("optional")) == secret.optional
        assert (
            config["securityContext"]["runAsUser"] == str(RUN_AS_USER)
            or config["securityContext"]["runAsUser"] == RUN_AS_USER
        )
        resources = body["container"]["resources"]
        for field in (
            "resourceCpuRequest",
            "resourceCpuLimit",
            "resourceMemoryRequest",
            "resourceMemoryLimit",
        ):
            assert resources.get(field), f"{executor}: no {field}"
    for task_name, task in container_tasks(spec):
        assert not task.get("cachingOptions", {}).get("enableCache"), task_name


@pytest.mark.parametrize("name", list(pipelines()))
def test_every_pipeline_records_its_run_in_an_exit_handler(name: str, tmp_path: Path) -> None:
    spec, _ = compiled(name, tmp_path)
    root = spec["root"]["dag"]["tasks"]
    exit_task = root[EXIT_TASK]
    assert exit_task["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    body = [t for n, t in root.items() if n != EXIT_TASK]
    assert len(body) == 1 and "exit-handler" in body[0]["componentRef"]["name"]
    inputs = spec["components"]["comp-record-run"]["inputDefinitions"]["parameters"]
    assert inputs["status"]["parameterType"] == "TASK_FINAL_STATUS"


def test_models_pass_as_artifacts_and_every_artifact_is_consumed(tmp_path: Path) -> None:
    """retrain -> Model -> validate, register, rollout; no artifact produced and dropped
    except what the UI shows (Metrics, Markdown)."""
    spec, _ = compiled("continuous_improvement", tmp_path)
    produced: set[tuple[str, str]] = set()
    consumed: set[tuple[str, str]] = set()
    for name, task in container_tasks(spec):
        component = spec["components"][task["componentRef"]["name"]]
        for output, body in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            kind = body["artifactType"]["schemaTitle"]
            if kind not in ("system.Metrics", "system.Markdown"):
                produced.add((name, output))
    for _, task in all_tasks(spec):  # a gate's sub-DAG takes the artifact on to its tasks
        for body in task.get("inputs", {}).get("artifacts", {}).values():
            source = body.get("taskOutputArtifact")
            if source:
                consumed.add((source["producerTask"], source["outputArtifactKey"]))
    assert produced and produced <= consumed, produced - consumed
    tasks = dict(all_tasks(spec))
    for consumer in ("validate-challenger", "register-version"):
        candidate = tasks[consumer]["inputs"]["artifacts"]["candidate"]
        assert candidate == {"componentInputArtifact": "pipelinechannel--retrain-lstm-model"}


def test_empty_parameters_are_documented_as_from_the_environment(tmp_path: Path) -> None:
    spec, _ = compiled("continuous_improvement", tmp_path)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name in ("database_url", "registry_url", "gitops_repo", "environment", "games_uri"):
        assert parameters[name]["defaultValue"] == ""
        assert "Empty: NBA_FORECAST_" in parameters[name]["description"], name


def test_continuous_improvement_gates(tmp_path: Path) -> None:
    spec, _ = compiled("continuous_improvement", tmp_path)
    gates = {
        t["taskInfo"]["name"]: t["triggerPolicy"]["condition"]
        for _, t in all_tasks(spec)
        if "condition" in t.get("triggerPolicy", {})
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
    passed = next(
        c
        for c in spec["components"].values()
        if "register-version" in c.get("dag", {}).get("tasks", {})
    )
    assert "rollout-ab" in passed["dag"]["tasks"]


def test_one_pipeline_per_cadence_named_after_its_step() -> None:
    # recalibrate has a pipeline for runs by hand, and no cadence (ACI recalibrates online)
    on_demand = {"continuous_improvement", "recalibrate"}
    assert {c.step.value for c in CADENCES} | on_demand == set(pipelines())
    assert "recalibrate" not in {c.step.value for c in CADENCES}


@pytest.mark.parametrize("step", [Step.RECALIBRATE, Step.UPDATE_DEJAVU, Step.RETRAIN])
def test_pipeline_runs_the_policy_chain(step: Step, tmp_path: Path) -> None:
    """The KFP pipeline of a step that makes a version runs exactly the chain that the CLI
    and the replay run (``Policy.chain``), in nested gates."""
    spec, _ = compiled(step.value, tmp_path)
    components = {name for name, _ in container_tasks(spec)} - {EXIT_TASK}
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
