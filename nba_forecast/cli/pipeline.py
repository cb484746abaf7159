"""``nba-forecast pipeline``: compile the KFP pipelines, or run one locally through KFP's
local runner (same components, this machine's Python)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from nba_forecast.cli.console import err, fail, out
from nba_forecast.cli.options import verbosity

pipeline_app = typer.Typer(help="Kubeflow Pipelines: compile and run.", no_args_is_help=True)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _pipelines() -> dict[str, Any]:
    # components/ and pipelines/ sit beside the package; from a source checkout put them on
    # the path (an installed wheel carries them as top-level packages)
    if str(REPO_ROOT) not in sys.path and (REPO_ROOT / "pipelines").is_dir():
        sys.path.insert(0, str(REPO_ROOT))
    from pipelines import pipelines

    return dict(pipelines())


@pipeline_app.command("compile")
def compile_pipelines(
    output: Annotated[Path, typer.Option("--out")] = Path("build/pipelines"),
) -> None:
    """Write every pipeline as KFP IR YAML, and as Kubernetes-native Pipeline +
    PipelineVersion manifests under ``kubernetes/`` (build outputs, not committed)."""
    from kfp import compiler

    output.mkdir(parents=True, exist_ok=True)
    (output / "kubernetes").mkdir(exist_ok=True)
    from nba_forecast import __version__

    for name, pipeline in _pipelines().items():
        path = output / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        native = output / "kubernetes" / f"{name}.yaml"
        resource = name.replace("_", "-")
        options = compiler.KubernetesManifestOptions(
            pipeline_name=resource,
            pipeline_version_name=f"{resource}-{__version__}".replace(".", "-").replace("+", "-"),
            include_pipeline_manifest=True,
        )
        compiler.Compiler().compile(
            pipeline,
            str(native),
            kubernetes_manifest_options=options,
            kubernetes_manifest_format=True,
        )
        out.print(f"{path}, {native}", highlight=False)


def _parse_params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise fail(f"bad --param {item!r}: use NAME=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw  # a plain string
    return params


RUNNERS = ("subprocess", "container")


def _parse_env(values: list[str]) -> dict[str, str]:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise fail(f"bad --set-env {item!r}: use NAME=VALUE")
        env[key] = value
    return env


@pipeline_app.command("run")
def run_pipeline(
    name: Annotated[str, typer.Argument(help="pipeline name (see `pipeline compile`)")],
    runner: Annotated[
        str,
        typer.Option(
            help="subprocess: every task in this Python; container: every task in its image "
            "(podman), with the environment the overlay's Pods get"
        ),
    ] = "subprocess",
    local: Annotated[bool, typer.Option("--local", help="same as --runner subprocess")] = False,
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (JSON or text)")] = None,
    root: Annotated[Path, typer.Option(help="local pipeline root (artifacts)")] = Path(
        "build/local-runs"
    ),
    env: Annotated[
        str | None,
        typer.Option("--env", help="container runner: the overlay whose Pod environment tasks get"),
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option(help="container runner: YAML of the Secrets (manifests/secrets.example.yaml)"),
    ] = None,
    set_env: Annotated[
        list[str] | None,
        typer.Option("--set-env", help="container runner: NAME=VALUE over the overlay's value"),
    ] = None,
    docker_host: Annotated[
        str | None,
        typer.Option(help="container API (default: DOCKER_HOST, else podman started here)"),
    ] = None,
    manifests: Annotated[Path, typer.Option(help="kustomize manifests folder")] = Path("manifests"),
) -> None:
    """Run a pipeline on this machine; prints each task's outcome and time and the decision."""
    pipelines = _pipelines()
    if name not in pipelines:
        raise fail(f"unknown pipeline {name!r}; have {', '.join(pipelines)}")
    if runner not in RUNNERS:
        raise fail(f"unknown --runner {runner!r}; use {' or '.join(RUNNERS)}")
    if local and runner != "subprocess":
        raise fail("--local is --runner subprocess; give one of them")
    container_only = {
        "--env": env,
        "--secrets": secrets,
        "--set-env": set_env,
        "--docker-host": docker_host,
    }
    given = [flag for flag, value in container_only.items() if value]
    if runner == "subprocess" and given:
        raise fail(f"{', '.join(given)} apply to --runner container only")
    params = _parse_params(param or [])
    if "as_of" in (pipelines[name].component_spec.inputs or {}):
        # the local runner cannot resolve the schedule-time placeholder; '' means now
        params.setdefault("as_of", "")
    from kfp import local as kfp_local

    from nba_forecast.local_runs import LocalRunError, run_pipeline

    if runner == "subprocess":
        log_path = _log_path(root, name)
        with _this_machine_settings():
            outcomes, _, seconds = _run_checked(
                name,
                lambda progress: run_pipeline(
                    pipelines[name],
                    params,
                    root,
                    kfp_local.SubprocessRunner(use_venv=False),
                    notify=progress,
                ),
                log_path,
            )
        _print_outcomes(f"{name}: local run", outcomes, seconds, log_path)
        if any(o.failed for o in outcomes):
            raise typer.Exit(1)
        return
    overrides = _parse_env(set_env or [])
    try:
        _run_in_containers(
            name,
            pipelines[name],
            params,
            root,
            env or "staging",
            secrets,
            overrides,
            docker_host,
            manifests,
        )
    except (LocalRunError, ValueError) as error:
        raise fail(str(error)) from None


def _log_path(root: Path, name: str) -> Path:
    """Where a run's own output goes (the runner's narration, every task's log lines)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return root.resolve() / "logs" / f"{name}-{stamp}.log"


@contextlib.contextmanager
def _this_machine_settings() -> Iterator[None]:
    """Local tasks use this machine's deployment (the options, environment, profile or the
    embedded defaults), as a cluster's tasks use their ConfigMap: resolved here and put in
    the environment the task processes inherit (pipeline parameters still win)."""
    from nba_forecast.cli.options import settings_or_fail
    from nba_forecast.lifecycle.deployment import open_log
    from nba_forecast.lifecycle.gitops import ensure_repo
    from nba_forecast.local_runs import environ

    settings = settings_or_fail()
    if settings.database_url is None:  # the embedded defaults are made on first use
        open_log(settings).engine.dispose()
    if settings.registry_url is None:
        (settings.home.expanduser() / "registry").mkdir(parents=True, exist_ok=True)
    if settings.gitops_repo is None:
        ensure_repo(Path(settings.resolved_gitops_repo()))
    values = {
        "NBA_FORECAST_DATABASE_URL": settings.resolved_database_url(),
        "NBA_FORECAST_REGISTRY_URL": settings.resolved_registry_url(),
        "NBA_FORECAST_GITOPS_REPO": settings.resolved_gitops_repo(),
        "NBA_FORECAST_ENVIRONMENT": settings.environment,
    }
    with environ(**values):
        yield


def _run_checked(name: str, run: Any, log_path: Path) -> Any:
    """Run (``run(progress)``) with the runner's output going to ``log_path`` (and the
    terminal with -v); parameters the pipeline refuses are a one-line error."""
    from kfp.dsl.types.type_utils import InconsistentTypeException

    from nba_forecast.local_runs import runner_output

    try:
        with runner_output(log_path, echo=verbosity() > 0) as progress:
            return run(progress)
    except (TypeError, InconsistentTypeException) as error:
        raise fail(f"bad parameters for {name}: {str(error).splitlines()[0]}") from None


def _masked(key: str, value: str, source: str, secret_variables: set[str]) -> str:
    """Secret values never reach the terminal, nor do credentials in URLs."""
    from nba_forecast.lifecycle.gitops import redact

    if source.startswith("Secret") or key in secret_variables:
        return "***"
    return redact(value)


def _run_in_containers(
    name: str,
    pipeline: Any,
    params: dict[str, Any],
    root: Path,
    env: str,
    secrets: Path | None,
    overrides: dict[str, str],
    docker_host: str | None,
    manifests: Path,
) -> None:
    """The container runner: resolve the Pod environment, start the container API, run,
    report, and copy the artifacts under the overlay's pipeline root."""
    import uuid

    from kfp import local as kfp_local

    from nba_forecast.local_runs import (
        RUN_LABEL,
        docker_api,
        remove_containers,
        require_images,
        run_pipeline,
        stale_images,
    )
    from nba_forecast.pod_env import load_secrets, pipeline_environment, render_overlay
    from nba_forecast.provenance import checkout_sha
    from pipelines.cluster import SECRETS

    overlay = render_overlay(manifests, env)
    secret_values = load_secrets(secrets) if secrets is not None else {}
    pod_env, images = pipeline_environment(pipeline, overlay, secret_values, secrets_file=secrets)
    variables = {**pod_env.variables, **overrides}
    sources = {**pod_env.sources, **{k: "--set-env" for k in overrides}}
    secret_variables = {v for secret in SECRETS for v in secret.keys.values()}
    # what the Pods get is part of the result here: short, and where a wrong value shows
    out.print(f"task environment (overlay {env}; Secret values masked):", highlight=False)
    for key in sorted(variables):
        shown = _masked(key, variables[key], sources[key], secret_variables)
        out.print(f"  {key}={shown}  [{sources[key]}]", highlight=False, markup=False)
    token = uuid.uuid4().hex
    with docker_api(docker_host):
        built = require_images(set(images.values()))
        for stale in stale_images(built, checkout_sha()):
            out.print(
                f"warning: {stale} was built from {built[stale].git_sha or 'unknown'}, "
                f"the checkout is at {checkout_sha()} (make images)",
                highlight=False,
            )
        image_ids = {reference: image.image_id for reference, image in built.items()}
        task_env = {**variables, "NBA_FORECAST_IMAGE_IDS": json.dumps(image_ids)}
        container_runner = kfp_local.DockerRunner(
            environment=task_env, network_mode="host", labels={RUN_LABEL: token}
        )
        log_path = _log_path(root, name)
        try:
            outcomes, run_root, seconds = _run_checked(
                name,
                lambda progress: run_pipeline(
                    pipeline, params, root, container_runner, in_containers=True, notify=progress
                ),
                log_path,
            )
        finally:  # Ctrl-C or a crash: no task container stays behind
            remove_containers(token)
    title = f"{name}: every task in its image, overlay {env}"
    _print_outcomes(title, outcomes, seconds, log_path)
    if run_root is not None:
        _after_container_run(name, run_root, outcomes, variables, overlay.pipeline_root)
    if any(o.failed for o in outcomes):
        raise typer.Exit(1)


def _after_container_run(
    name: str, run_root: Path, outcomes: list[Any], variables: dict[str, str], pipeline_root: str
) -> None:
    """Put the run record right and copy the artifacts to the S3 pipeline root; a store
    that cannot be reached is reported, not a traceback."""
    from nba_forecast.local_runs import correct_run_record, environ, mirror_to_store
    from nba_forecast.storage.object_store import open_store

    credentials = {k: v for k, v in variables.items() if k.startswith("AWS_")}
    endpoint = variables.get("NBA_FORECAST_S3_ENDPOINT_URL") or None
    registry = variables.get("NBA_FORECAST_REGISTRY_URL", "")
    with environ(**credentials):
        try:
            if registry:
                store = open_store(registry, endpoint_url=endpoint)
                if correct_run_record(store, name, run_root.name, outcomes):
                    out.print(f"run record corrected to FAILED in {registry}/runs/{name}/")
            if pipeline_root.startswith("s3://"):
                target = mirror_to_store(run_root, pipeline_root, endpoint)
                out.print(f"artifacts: {target}/", highlight=False)
        except Exception as error:  # boto raises many types: connection, auth, throttling
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            out.print(
                f"could not reach the store ({endpoint or 'AWS'}): {first}; the artifacts "
                f"stay in {run_root}",
                highlight=False,
            )


def _print_outcomes(title: str, outcomes: list[Any], seconds: float, log_path: Path) -> None:
    """The tasks in the order they run (skipped ones with why), the decision, where the
    runner's output went; for a failed task the end of that output (its traceback)."""
    from nba_forecast.cli.options import command_seconds
    from nba_forecast.local_runs import decision, log_errors

    table = Table(title=f"{title}: run {seconds:.1f} s, command {command_seconds():.1f} s")
    for column in ("task", "status", "seconds", "outputs / why not run"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        took = "" if outcome.seconds is None else f"{outcome.seconds:.1f}"
        shown = outcome.why if not outcome.ran else json.dumps(outcome.outputs)
        table.add_row(outcome.task, outcome.status, took, Text(shown))
    out.print(table)
    out.print(f"decision: {decision(outcomes)}", highlight=False)
    if any(o.failed for o in outcomes) and verbosity() == 0:
        for line in log_errors(log_path):
            err.print(f"task error: {line}", markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"runner output: {log_path}" + ("" if verbosity() else " (-v shows it)"), highlight=False
    )


def _client(host: str) -> Any:
    import warnings

    import kfp

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "works with KFP >= 2.0.0-beta.2"
            client = kfp.Client(host=host)
        client.list_experiments(page_size=1)  # fail here, clearly, if the API is unreachable
    except Exception as error:  # kfp raises many types: connection, auth, API errors
        raise fail(f"cannot reach the KFP API at {host}: {str(error).splitlines()[0]}") from None
    return client


@pipeline_app.command("submit")
def submit_pipeline(
    name: Annotated[str, typer.Argument(help="pipeline name")],
    host: Annotated[str, typer.Option(help="KFP API URL, e.g. http://localhost:8080")],
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (JSON or text)")] = None,
    experiment: Annotated[str, typer.Option(help="KFP experiment")] = "nba-forecast",
) -> None:
    """Compile, upload as a new pipeline version, and start a run on a cluster."""
    import tempfile

    from kfp import compiler

    pipelines = _pipelines()
    if name not in pipelines:
        raise fail(f"unknown pipeline {name!r}; have {', '.join(pipelines)}")
    params = _parse_params(param or [])
    client = _client(host)
    with tempfile.TemporaryDirectory() as tmp:
        package = str(Path(tmp) / f"{name}.yaml")
        compiler.Compiler().compile(pipelines[name], package)
        version_name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        pipeline_id = client.get_pipeline_id(name)
        if pipeline_id is None:
            uploaded = client.upload_pipeline(package, pipeline_name=name)
            pipeline_id = uploaded.pipeline_id
        version = client.upload_pipeline_version(
            package, pipeline_version_name=version_name, pipeline_id=pipeline_id
        )
    experiment_id = client.create_experiment(experiment).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=version_name,
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id,
        params=params,
    )
    out.print(f"submitted {name} ({version_name}): run {run.run_id}", highlight=False)


schedules_app = typer.Typer(
    help="KFP recurring runs, kept in step with manifests/.", no_args_is_help=True
)
FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="a schedules file (default: the schedules this version declares, as in "
        "manifests/base/schedules.yaml)",
    ),
]


@schedules_app.command("render")
def render_schedules_file(
    output: Annotated[
        Path | None, typer.Option("--out", help="write here (default: print to stdout)")
    ] = None,
) -> None:
    """The schedules manifest generated from the cadence table (the one declaration)."""
    from nba_forecast.lifecycle.schedules import render_schedules

    text = render_schedules()
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise fail(f"cannot write {output}: {error}") from None
    out.print(f"wrote {output}", highlight=False)


@schedules_app.command("list")
def list_schedules(
    file: FileOption = None,
) -> None:
    """The declared recurring runs and the KFP names they get."""
    from nba_forecast.lifecycle.schedules import load_schedules

    try:
        runs = load_schedules(file)
    except ValueError as error:
        raise fail(str(error)) from None
    table = Table(title=str(file or "declared schedules"))
    for column in ("name", "pipeline", "cron (UTC, seconds first)", "KFP name"):
        table.add_column(column)
    for run in runs:
        table.add_row(run.name, run.pipeline, run.cron, run.kfp_name)
    out.print(table)


@schedules_app.command("sync")
def sync_schedules(
    host: Annotated[str, typer.Option(help="KFP API URL")],
    file: FileOption = None,
    dry_run: Annotated[bool, typer.Option(help="print the plan, change nothing")] = False,
    prune: Annotated[
        bool, typer.Option(help="also delete managed runs no longer declared")
    ] = False,
    experiment: Annotated[str, typer.Option(help="KFP experiment")] = "nba-forecast",
) -> None:
    """Create, delete and re-create KFP recurring runs to match the schedules file."""
    import tempfile

    from kfp import compiler

    from nba_forecast.lifecycle.schedules import load_schedules, plan_sync

    try:
        declared = load_schedules(file)
    except ValueError as error:
        raise fail(str(error)) from None
    pipelines = _pipelines()
    unknown = sorted({r.pipeline for r in declared} - set(pipelines))
    if unknown:
        raise fail(
            f"{file or 'schedules'}: unknown pipeline(s) {unknown}; have {', '.join(pipelines)}"
        )
    client = _client(host)
    experiment_id = client.create_experiment(experiment).experiment_id
    listed = client.list_recurring_runs(experiment_id=experiment_id, page_size=200)
    existing = {r.display_name: r.recurring_run_id for r in (listed.recurring_runs or [])}
    plan = plan_sync(declared, list(existing), prune=prune)
    for run in plan.create:
        out.print(f"create {run.kfp_name} ({run.pipeline}, {run.cron})", highlight=False)
    for name in plan.delete:
        out.print(f"delete {name}", highlight=False)
    for name in plan.keep:
        out.print(f"keep   {name}", highlight=False)
    if dry_run:
        return
    for name in plan.delete:
        client.delete_recurring_run(existing[name])
    with tempfile.TemporaryDirectory() as tmp:
        for run in plan.create:
            package = str(Path(tmp) / f"{run.pipeline}.yaml")
            compiler.Compiler().compile(pipelines[run.pipeline], package)
            client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=run.kfp_name,
                cron_expression=run.cron,
                max_concurrency=run.max_concurrency,
                no_catchup=run.no_catchup,
                pipeline_package_path=package,
                params=dict(run.parameters),
            )
