"""Reading what a local KFP run did: task statuses from the runner's log lines, checked
against each task's executor output (the DockerRunner calls a vanished container a
success), the decision, and the run record put right afterwards."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nba_forecast.local_runs import (
    BuiltImage,
    TaskLog,
    TaskOutcome,
    correct_run_record,
    decision,
    stale_images,
    task_outcomes,
)
from nba_forecast.storage.object_store import open_store


def runner_logs(log: TaskLog, lines: list[str]) -> None:
    logger = logging.getLogger("kfp-local-test")
    with log.attached():
        for line in lines:
            record = logger.makeRecord("x", logging.INFO, __file__, 1, line, None, None)
            logging.getLogger().filter(record)


def test_a_success_without_executor_output_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "collect-predictions").mkdir()
    (tmp_path / "collect-predictions" / "executor_output.json").write_text(
        json.dumps({"parameterValues": {"Output": False}})
    )
    log = TaskLog()
    runner_logs(
        log,
        [
            "Executing task \x1b[96m'collect-predictions'\x1b[0m",
            "Task \x1b[96m'collect-predictions'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m",
            "Executing task 'update-dejavu'",
            "Task 'update-dejavu' finished with status SUCCESS",
            "Executing task 'record-run'",
            "Task 'record-run' finished with status FAILURE",
        ],
    )
    outcomes = task_outcomes(tmp_path, log)
    assert [(o.task, o.status) for o in outcomes] == [
        ("collect-predictions", "succeeded"),
        ("update-dejavu", "failed (no executor output)"),
        ("record-run", "failed"),
    ]
    assert outcomes[0].outputs == {"Output": False}
    assert decision(outcomes) == (
        "failed at update-dejavu; the run record was not written (record-run failed)"
    )


def test_the_decision_is_the_last_step_and_what_it_returned() -> None:
    ok = [
        TaskOutcome("retrain-lstm", "succeeded", 1.0, {"Output": ""}),
        TaskOutcome("record-run", "succeeded", 1.0, {"Output": "SUCCEEDED"}),
    ]
    assert decision(ok) == "retrain-lstm -> nothing to do"
    assert decision([]) == "no task ran"


def test_the_run_record_is_corrected_when_a_task_failed_unseen(tmp_path: Path) -> None:
    store = open_store((tmp_path / "registry").as_uri())
    record = {"run_name": "ci-1", "state": "SUCCEEDED", "failed_task": ""}
    store.put("runs/continuous_improvement/1.json", json.dumps(record).encode())
    store.put(
        "runs/continuous_improvement/2.json", json.dumps({**record, "run_name": "x"}).encode()
    )
    failed = [TaskOutcome("update-dejavu", "failed (no executor output)", 3.0)]
    fixed = correct_run_record(store, "continuous_improvement", "ci-1", failed)
    assert fixed and fixed["state"] == "FAILED" and fixed["failed_task"] == "update-dejavu"
    assert json.loads(store.get("runs/continuous_improvement/1.json"))["state"] == "FAILED"
    assert json.loads(store.get("runs/continuous_improvement/2.json"))["state"] == "SUCCEEDED"
    ok = [TaskOutcome("update-dejavu", "succeeded", 3.0)]
    assert correct_run_record(store, "continuous_improvement", "x", ok) is None


def test_images_built_from_another_commit_are_stale() -> None:
    built = {
        "a": BuiltImage("a", "sha256:1", "abc"),
        "b": BuiltImage("b", "sha256:2", "abc-dirty"),
    }
    assert stale_images(built, "abc") == ["b"]
    assert stale_images(built, "unknown") == []


def test_the_plan_names_tasks_as_the_runner_does_and_in_the_order_they_run() -> None:
    """Two `rollout-ab` tasks in different branches: the local runner calls the second
    `rollout-ab-2` (after its component); the exit handler's task comes last."""
    from nba_forecast.cli.pipeline import _pipelines
    from nba_forecast.local_runs import TaskOutcome, planned_tasks, with_skipped

    plan = planned_tasks(_pipelines()["continuous_improvement"])
    names = [task.task for task in plan]
    assert len(names) == len(set(names)) and names[-1] == "record-run"
    assert names.index("retrain-lstm") < names.index("rollout-ab-2")
    ran = [TaskOutcome(n, "succeeded", 1.0) for n in ("collect-predictions", "record-run")]
    rows = with_skipped(ran, plan)
    assert [r.task for r in rows] == names
    skipped = {r.task: r.why for r in rows if r.status == "skipped"}
    assert skipped["recalibrate-conformal"] == "runs only if collect-predictions returned true"
    failed = with_skipped([TaskOutcome("collect-predictions", "failed", 1.0)], plan)
    assert {r.status for r in failed[1:]} == {"not run"}
