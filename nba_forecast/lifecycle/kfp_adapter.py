"""The lifecycle steps as KFP components call them: URLs and paths as strings (empty means
the deployment's settings, from the ConfigMap and Secrets in the task's environment), and a
metrics object with ``log_metric``. One call per component; the logic stays in the steps.
(No KFP import here: the package runs without the SDK.)

A task pod has no local registry, database or GitOps repository to fall back to: a setting
a component needs that neither its parameter nor the environment gives is an error at once
(``TaskConfigError``), never a silent ``file://`` or SQLite default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from nba_forecast.lifecycle.context import Context, StepResult, parse_as_of
from nba_forecast.lifecycle.policy import Step

# parameter -> (environment variable, where a cluster sets it)
SETTING_SOURCES = {
    "database_url": ("NBA_FORECAST_DATABASE_URL", "Secret nba-forecast-database, key url"),
    "registry_url": ("NBA_FORECAST_REGISTRY_URL", "ConfigMap nba-forecast-settings"),
    "gitops_repo": ("NBA_FORECAST_GITOPS_REPO", "ConfigMap nba-forecast-settings"),
    "environment": ("NBA_FORECAST_ENVIRONMENT", "ConfigMap nba-forecast-settings"),
}


class TaskConfigError(ValueError):
    """A component needs a setting its task was not given."""


class MetricsSink(Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


def require_settings(deployment: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """Every setting the component passes must come from its parameter or the environment."""
    missing = [
        f"{name} (parameter empty, {SETTING_SOURCES[name][0]} unset; on a cluster: "
        f"{SETTING_SOURCES[name][1]})"
        for name, value in deployment.items()
        if name in SETTING_SOURCES and not value and not environ.get(SETTING_SOURCES[name][0])
    ]
    if missing:
        raise TaskConfigError(
            "this task was given no " + "; no ".join(missing) + ". A pipeline task has no "
            "local registry, database or GitOps repository to fall back to: give the pods "
            "the nba-forecast-settings ConfigMap and Secrets (manifests/), or pass the "
            "parameter."
        )


def component_context(
    database_url: str = "",
    registry_url: str = "",
    gitops_repo: str = "",
    environment: str = "",
    games_uri: str = "",
) -> Context:
    """The step's context, built once from the settings and the pipeline's parameters."""
    from nba_forecast.lifecycle.deployment import build_context, shipped_games_plus
    from nba_forecast.settings import Settings

    settings = Settings()
    return build_context(
        settings,
        database_url=database_url or None,
        registry_url=registry_url or None,
        gitops_repo=gitops_repo or None,
        environment=environment or None,
        games=shipped_games_plus(
            games_uri or settings.games_uri, endpoint_url=settings.s3_endpoint_url
        ),
    )


def run_component(
    step: str,
    as_of: str,
    metrics: MetricsSink | None = None,
    *,
    deployment: dict[str, str] | None = None,
    **options: Any,
) -> StepResult:
    """Run one step (waiting steps are skipped as the policy says) and log its metrics."""
    from nba_forecast.lifecycle.run import produce

    deployment = deployment or {}
    require_settings(deployment, os.environ)
    ctx = component_context(**deployment)
    result = produce(ctx, Step(step), parse_as_of(as_of), **options)
    if metrics is not None:
        for name, value in result.metrics.items():
            if isinstance(value, int | float) and value == value:  # skip NaN
                metrics.log_metric(name, float(value))
    return result


def resolved_registry_url(registry_url: str = "") -> str:
    """The registry a task uses: its parameter, else the environment (checked)."""
    require_settings({"registry_url": registry_url}, os.environ)
    return registry_url or os.environ[SETTING_SOURCES["registry_url"][0]]


def model_artifact(version: str | None, registry_url: str = "") -> tuple[str, dict[str, Any]]:
    """What a KFP ``Model`` artifact of a registered version holds: the version's manifest
    (its files stay in the registry, content-addressed) and the metadata the UI shows and
    downstream tasks read: registry URL, version, what it was trained on, the code."""
    from nba_forecast.provenance import provenance

    url = resolved_registry_url(registry_url)
    if not version:
        return "{}", {"registry_url": url, "version": ""}
    from nba_forecast.settings import Settings
    from nba_forecast.storage.registry import Registry

    manifest = Registry.open(url, endpoint_url=Settings().s3_endpoint_url).manifest(version)
    metadata: dict[str, Any] = {"registry_url": url, "version": version, **provenance()}
    metadata.update({f"data_{k}": str(v) for k, v in manifest.data_window.items()})
    return manifest.to_json(), metadata


class ArtifactSink(Protocol):
    path: str
    metadata: dict[str, Any]


def export_model(artifact: ArtifactSink, version: str | None, registry_url: str = "") -> str:
    """Fill a component's ``Output[Model]`` for ``version`` (see ``model_artifact``);
    returns the version id ('' for none), the component's own return value."""
    content, metadata = model_artifact(version, registry_url)
    with open(artifact.path, "w") as file:
        file.write(content)
    artifact.metadata.update(metadata)
    return version or ""


def model_reference(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """(registry URL, version) of an input ``Model`` artifact; a clear error when it names
    none (the producing task made no version)."""
    url, version = str(metadata.get("registry_url", "")), str(metadata.get("version", ""))
    if not url or not version:
        raise TaskConfigError(
            f"the input model artifact names no registered version (metadata {dict(metadata)})"
        )
    return url, version


def record_pipeline_run(
    registry_url: str,
    *,
    pipeline: str,
    run_id: str,
    run_name: str,
    state: str,
    failed_task: str = "",
    error: str = "",
) -> dict[str, Any]:
    """The exit handler's record of one run, stored at ``runs/<pipeline>/<run id>.json``
    beside the registry (what ran, how it ended, which code) and logged as one line."""
    import datetime as dt
    import json
    import logging
    import re

    from nba_forecast.provenance import provenance
    from nba_forecast.settings import Settings
    from nba_forecast.storage.object_store import open_store

    record: dict[str, Any] = {
        "pipeline": pipeline,
        "run_id": run_id,
        "run_name": run_name,
        "state": state,
        "failed_task": failed_task if state != "SUCCEEDED" else "",
        "error": error,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **provenance(),
    }
    url = resolved_registry_url(registry_url)
    store = open_store(url, endpoint_url=Settings().s3_endpoint_url)
    safe_id = re.sub(r"[^\w.-]", "_", run_id or run_name or "unknown")[:200]
    store.put(f"runs/{pipeline}/{safe_id}.json", json.dumps(record, indent=2).encode())
    line = (
        f"pipeline {pipeline} run {run_name or run_id}: {state}"
        + (f" (task {failed_task}: {error})" if record["failed_task"] else "")
        + f"; git {record['git_sha']}, image {record['image'] or '-'}"
    )
    logging.getLogger("nba_forecast.runs").log(
        logging.INFO if state == "SUCCEEDED" else logging.ERROR, line
    )
    print(line, flush=True)  # the pod's log, whatever the log level
    return record
