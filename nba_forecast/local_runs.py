"""Running a pipeline on this machine with KFP's local runners: in this Python
(``SubprocessRunner``), or each task in its image (``DockerRunner`` against podman's Docker
API, with the environment a cluster's Pod gets: ``nba_forecast.pod_env``). What each task
did is read from the runner's log lines and the tasks' own ``executor_output.json``: the
local DockerRunner reports success for a container that is gone before its exit status is
read, so a task without its executor output counts as failed."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PODMAN_START_TIMEOUT_S = 30
CONTAINERS_CONF = Path(__file__).resolve().parents[1] / "images" / "containers.conf"
EXIT_TASK = "record-run"


class LocalRunError(RuntimeError):
    """The runner could not start (no podman, image not built, bad pipeline root)."""


@dataclass
class TaskOutcome:
    task: str
    status: str  # succeeded, failed, skipped, not run
    seconds: float | None
    outputs: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # for a task that did not run

    @property
    def ran(self) -> bool:
        return self.status not in ("skipped", "not run")

    @property
    def failed(self) -> bool:
        return self.ran and self.status != "succeeded"


@dataclass(frozen=True)
class PlannedTask:
    task: str
    condition: str  # the condition it runs under, in words ("" if none)


CONDITION = re.compile(r"pipelinechannel--([\w-]+?)-Output'\] (==|!=) (.+)$")


def _condition_in_words(expression: str) -> str:
    """KFP's ``inputs.parameter_values['pipelinechannel--retrain-lstm-Output'] != ''`` as
    "retrain-lstm returned a value"; anything else as it is."""
    match = CONDITION.search(expression)
    if not match:
        return expression
    task, operator, value = match.groups()
    if value in ("''", '""'):
        return f"{task} returned {'a value' if operator == '!=' else 'nothing'}"
    return f"{task} returned {'' if operator == '==' else 'other than '}{value}"


def local_name(component: str) -> str:
    from kfp.local.executor_input_utils import get_local_task_resource_name

    return str(get_local_task_resource_name(component))


def planned_tasks(pipeline: Any) -> list[PlannedTask]:
    """Every task of a pipeline in the order it runs (dependencies first, sub-DAGs in
    place; the exit handler's task last), each with the condition it runs under."""
    spec = pipeline.pipeline_spec
    planned: list[PlannedTask] = []

    def walk(dag: Any, condition: str) -> None:
        tasks = dict(dag.tasks)
        done: set[str] = set()
        while len(done) < len(tasks):
            ready = [
                name
                for name, task in tasks.items()
                if name not in done and set(task.dependent_tasks) & set(tasks) <= done
            ] or [n for n in tasks if n not in done][:1]  # KFP DAGs have no cycles; never stall
            for name in sorted(ready, key=list(tasks).index):
                task = tasks[name]
                done.add(name)
                inner = task.trigger_policy.condition
                where = _condition_in_words(inner) if inner else condition
                component = spec.components[task.component_ref.name]
                if component.dag.tasks:
                    walk(component.dag, where)
                else:  # the runner names a task after its component (rollout-ab-2)
                    planned.append(PlannedTask(local_name(task.component_ref.name), where))

    walk(spec.root.dag, "")
    return planned


def with_skipped(outcomes: list[TaskOutcome], planned: list[PlannedTask]) -> list[TaskOutcome]:
    """The outcomes in the pipeline's order, with a row for each task that did not run
    and why: its condition was false, or a task before it failed."""
    ran = {o.task: o for o in outcomes}
    failed = any(o.failed for o in outcomes if o.task != EXIT_TASK)
    rows = []
    for task in planned:
        if task.task in ran:
            rows.append(ran.pop(task.task))
        elif failed:
            rows.append(TaskOutcome(task.task, "not run", None, why="a task before it failed"))
        else:
            reason = f"runs only if {task.condition}" if task.condition else "not started"
            rows.append(TaskOutcome(task.task, "skipped", None, why=reason))
    return rows + list(ran.values())  # a task the plan does not name (none expected)


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class TaskLog(logging.Filter):
    """Task start, end and status from the local runner's log lines. A filter on the root
    logger, as the runner replaces the root handlers while it runs. ``notify`` hears each
    start and end (progress for a person watching)."""

    PATTERN = re.compile(r"^(Executing task|Task) '([\w-]+)'(?: finished with status (\w+))?")
    COLOUR = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.notify = notify

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.COLOUR.sub("", record.getMessage())
        match = self.PATTERN.search(message)
        if match:
            task = match.group(2)
            if message.startswith("Executing task"):
                self.started[task] = record.created
                if self.notify:
                    self.notify(f"{task}: running")
            elif match.group(3):
                self.status[task] = match.group(3).lower()
                if task in self.started:
                    self.seconds[task] = record.created - self.started[task]
                if self.notify:
                    took = self.seconds.get(task)
                    shown = "" if took is None else f" in {took:.1f} s"
                    self.notify(f"{task}: {self.status[task]}{shown}")
        return True

    @contextlib.contextmanager
    def attached(self) -> Iterator[TaskLog]:
        logging.getLogger().addFilter(self)
        try:
            yield self
        finally:
            logging.getLogger().removeFilter(self)


def task_outcomes(run_root: Path | None, log: TaskLog) -> list[TaskOutcome]:
    """Every task the run started, in the order it started; a task the runner called
    successful but that left no executor output counts as failed."""
    outcomes = []
    for task in sorted(log.started, key=log.started.__getitem__):
        output = run_root / task / "executor_output.json" if run_root else None
        status = log.status.get(task, "failed")
        outputs: dict[str, Any] = {}
        if output is not None and output.is_file():
            outputs = dict(json.loads(output.read_text()).get("parameterValues", {}))
        elif status == "success":
            status = "failure (no executor output)"
        label = "succeeded" if status == "success" else status.replace("failure", "failed")
        outcomes.append(TaskOutcome(task, label, log.seconds.get(task), outputs))
    return outcomes


def decision(outcomes: list[TaskOutcome]) -> str:
    """What the run decided: the last step task that ran and what it returned (and whether
    the exit handler could record the run)."""
    steps = [o for o in outcomes if o.task != EXIT_TASK and o.ran]
    unrecorded = any(o.task == EXIT_TASK and o.status != "succeeded" for o in outcomes)
    note = "; the run record was not written (record-run failed)" if unrecorded else ""
    if not steps:
        return "no task ran" + note
    failed = [o.task for o in steps if o.failed]
    if failed:
        return f"failed at {failed[0]}" + note
    last = steps[-1]
    value = last.outputs.get("Output")
    shown = json.dumps(value) if value not in (None, "") else "nothing to do"
    return f"{last.task} -> {shown}" + note


@contextlib.contextmanager
def docker_api(host: str | None = None) -> Iterator[str]:
    """A Docker-compatible API for KFP's DockerRunner (the docker SDK reads DOCKER_HOST):
    ``host``, else DOCKER_HOST, else a podman service started for this run and stopped
    after it."""
    given = host or os.environ.get("DOCKER_HOST")
    if given:
        with environ(DOCKER_HOST=given):
            yield given
        return
    podman = shutil.which("podman")
    if podman is None:
        raise LocalRunError(
            "no container API: install podman (apt-get install podman runc) or give "
            "--docker-host unix:///path/to/docker.sock"
        )
    folder = Path(tempfile.mkdtemp(prefix="nba-forecast-podman-"))
    socket_path = folder / "podman.sock"
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env and CONTAINERS_CONF.is_file():
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    process = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{socket_path}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + PODMAN_START_TIMEOUT_S
        while not socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                error = process.stderr.read() if process.stderr and process.poll() else ""
                raise LocalRunError(f"podman system service did not start: {error.strip()}")
            time.sleep(0.1)
        with environ(DOCKER_HOST=f"unix://{socket_path}"):
            yield f"unix://{socket_path}"
    finally:
        stop_process(process, grace_s=10)
        shutil.rmtree(folder, ignore_errors=True)


def stop_process(process: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: a process this code started never outlives it."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    image_id: str
    git_sha: str  # the commit it was built from (images/Dockerfile bakes it)


def require_images(images: set[str]) -> dict[str, BuiltImage]:
    """Every image the tasks name is in the container store (nothing is pulled here), with
    its id (which the tasks record: an image cannot know its own) and source commit."""
    import docker

    try:
        client = docker.from_env()
        try:
            present = {
                name: image
                for image in client.images.list()
                for name in [*image.tags, *image.attrs.get("RepoDigests", [])]
            }
        finally:
            client.close()
    except docker.errors.DockerException as error:
        raise LocalRunError(
            f"cannot reach the container API at {os.environ.get('DOCKER_HOST')}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    found = {i: present.get(i) or present.get(f"{i}:latest") for i in images}
    missing = sorted(i for i, image in found.items() if image is None)
    if missing:
        raise LocalRunError(f"image(s) not built: {', '.join(missing)} (run `make images`)")
    built = {}
    for reference, image in found.items():
        assert image is not None
        env = dict(
            item.partition("=")[::2] for item in (image.attrs.get("Config") or {}).get("Env") or []
        )
        built[reference] = BuiltImage(reference, str(image.id), env.get("NBA_FORECAST_GIT_SHA", ""))
    return built


RUN_LABEL = "nba-forecast.local-run"


def remove_containers(run_token: str) -> int:
    """Stop and remove the task containers of one run (labelled with ``run_token``): an
    interrupted run leaves no task running with the Secrets in its environment."""
    import docker

    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return 0
    removed = 0
    try:
        for container in client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={run_token}"}
        ):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
                removed += 1
    finally:
        client.close()
    return removed


def stale_images(built: dict[str, BuiltImage], checkout_sha: str) -> list[str]:
    """Images built from another commit than the checkout (or from a dirty tree)."""
    if checkout_sha in ("", "unknown"):
        return []
    return sorted(
        b.reference
        for b in built.values()
        if b.git_sha != checkout_sha or b.git_sha.endswith("-dirty")
    )


def correct_run_record(
    store: Any, pipeline: str, run_name: str, outcomes: list[TaskOutcome]
) -> dict[str, Any] | None:
    """The exit handler saw the runner's view; where a task left no executor output the
    runner had called it a success. Record the run as failed, as a cluster would."""
    failed = [o for o in outcomes if o.task != EXIT_TASK and o.failed]
    if not failed:
        return None
    for key in store.list(f"runs/{pipeline}/"):
        record = json.loads(store.get(key))
        if record.get("run_name") == run_name and record.get("state") == "SUCCEEDED":
            record.update(
                state="FAILED",
                failed_task=failed[0].task,
                error=f"{failed[0].status} (corrected after the local container run)",
            )
            store.put(key, json.dumps(record, indent=2).encode())
            return record
    return None


CONTAINER_ROOT = "container-runs"  # under --root: the one folder containers write to


@contextlib.contextmanager
def runner_output(log_path: Path, *, echo: bool) -> Iterator[Callable[[str], None]]:
    """Everything the runner and its tasks write (this process's stdout and stderr, and the
    task processes that inherit them) goes to ``log_path`` without colour codes, and to the
    terminal too when ``echo`` (colour kept only where it is a terminal). Yields a function
    that shows a progress line on the terminal's stderr (only when it is a terminal)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    colour = streams[0].isatty()
    read_end, write_end = os.pipe()

    def copy() -> None:
        with open(log_path, "wb") as log, os.fdopen(read_end, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                plain = ANSI.sub(b"", line)
                log.write(plain)
                if echo:  # to whatever stdout was (a test runner's buffer included)
                    streams[0].write((line if colour else plain).decode(errors="replace"))

    def progress(text: str) -> None:
        if not echo and os.isatty(saved_err):
            os.write(saved_err, f"  {text}\n".encode())

    copier = threading.Thread(target=copy, name="runner-output", daemon=True)
    copier.start()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    # Python-level writers (logging handlers, warnings) may hold other objects than fd 1/2
    # (a test runner's buffers): they write to the pipe too while the run lasts
    text = os.fdopen(os.dup(write_end), "w", buffering=1, errors="replace")
    os.close(write_end)
    sys.stdout = sys.stderr = text
    try:
        yield progress
    finally:
        text.flush()
        sys.stdout, sys.stderr = streams
        text.close()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        copier.join(timeout=30)
        streams[0].flush()
        os.close(saved_out)
        os.close(saved_err)


ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


def log_errors(log_path: Path, limit: int = 3) -> list[str]:
    """The exceptions a run's tasks died of (the last line of each traceback), in order,
    each once: what a person needs from hundreds of lines of runner output."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    for line in lines:
        match = ERROR_LINE.match(line)
        if match and "Traceback" not in line:
            text = f"{match.group(1)}: {match.group(2).strip()}"
            if text not in found:
                found.append(text)
    return found[:limit]


def run_pipeline(
    pipeline: Any,
    params: dict[str, Any],
    root: Path,
    runner: Any,
    *,
    in_containers: bool = False,
    notify: Callable[[str], None] | None = None,
) -> tuple[list[TaskOutcome], Path | None, float]:
    """Run ``pipeline`` with a KFP local ``runner``; the tasks' outcomes, the run's folder
    and the wall time. For containers the pipeline root is ``root/container-runs``, which
    (like /tmp: sticky, world-writable) the images' non-root user can write to; the runner
    makes its run folders there with umask 0. Nothing else under ``root`` is opened up."""
    from kfp import local as kfp_local

    root = root.resolve()
    if in_containers:
        root = root / CONTAINER_ROOT
    root.mkdir(parents=True, exist_ok=True)
    if in_containers:
        root.chmod(0o1777)
    before = set(root.iterdir())
    kfp_local.init(runner=runner, pipeline_root=str(root), raise_on_error=False)
    log = TaskLog(notify)
    start = time.perf_counter()
    previous_umask = os.umask(0) if in_containers else None
    try:
        with log.attached():
            pipeline(**params)
    finally:
        if previous_umask is not None:
            os.umask(previous_umask)
    seconds = time.perf_counter() - start
    runs = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime_ns)
    run_root = runs[-1] if runs else None
    return with_skipped(task_outcomes(run_root, log), planned_tasks(pipeline)), run_root, seconds


def mirror_to_store(run_root: Path, pipeline_root: str, endpoint_url: str | None) -> str:
    """Copy the run's artifacts under the cluster's pipeline root (the S3 artifact store
    the local pipeline root stands for); returns where they went."""
    from nba_forecast.storage.object_store import S3Store, open_store

    target = f"{pipeline_root.rstrip('/')}/{run_root.name}"
    store = open_store(target, endpoint_url=endpoint_url)
    if isinstance(store, S3Store):  # an unreachable store: fail in seconds, not minutes
        store = S3Store(
            store.bucket, store.prefix, endpoint_url=endpoint_url, max_attempts=2, timeout_s=5.0
        )
    for path in sorted(run_root.rglob("*")):
        if path.is_file():
            store.put(path.relative_to(run_root).as_posix(), path.read_bytes())
    return target
