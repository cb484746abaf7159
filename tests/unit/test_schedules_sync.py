from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.lifecycle.schedules import (
    CADENCES,
    RecurringRun,
    load_schedules,
    plan_sync,
)

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "manifests" / "base" / "schedules.yaml"
runner = CliRunner()


def test_the_schedules_file_matches_the_cadence_table() -> None:
    declared = {run.pipeline: run for run in load_schedules(FILE)}
    assert set(declared) == {c.step.value for c in CADENCES}
    for cadence in CADENCES:
        run = declared[cadence.step.value]
        assert run.cron == cadence.cron
        assert run.max_concurrency == 1 and run.no_catchup


def test_plan_creates_keeps_replaces_and_prunes() -> None:
    monitor = RecurringRun("monitor", "monitor", "0 0 * * * *")
    retrain = RecurringRun("retraining", "retraining", "0 0 9 1 * *")
    changed = RecurringRun("retraining", "retraining", "0 0 9 15 * *")
    first = plan_sync([monitor, retrain], [], prune=False)
    assert [r.kfp_name for r in first.create] == [monitor.kfp_name, retrain.kfp_name]
    existing = [monitor.kfp_name, retrain.kfp_name, "nbaf-old-12345678", "someone-elses-run"]
    steady = plan_sync([monitor, retrain], existing, prune=False)
    assert (
        steady.create == ()
        and steady.delete == ()
        and set(steady.keep) == {monitor.kfp_name, retrain.kfp_name}
    )
    replaced = plan_sync([monitor, changed], existing, prune=False)
    assert [r.kfp_name for r in replaced.create] == [changed.kfp_name]
    assert replaced.delete == (retrain.kfp_name,)  # KFP cannot update in place
    pruned = plan_sync([monitor, changed], existing, prune=True)
    assert set(pruned.delete) == {retrain.kfp_name, "nbaf-old-12345678"}
    assert "someone-elses-run" not in pruned.delete
    assert changed.kfp_name != retrain.kfp_name and changed.kfp_name.startswith("nbaf-retraining-")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedules: [{name: a, pipeline: monitor}]", "lacks cron"),
        ("schedules: [{name: a, pipeline: monitor, cron: '0 * * * *'}]", "6 fields"),
        (
            "schedules: [{name: a, pipeline: m, cron: '0 0 * * * *'}, "
            "{name: a, pipeline: m, cron: '0 0 * * * *'}]",
            "unique",
        ),
        ("just text", "a 'schedules' list"),
        ("schedules: [unclosed", "cannot read"),
    ],
)
def test_bad_schedule_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_schedules(path)
    result = runner.invoke(app, ["schedules", "list", "--file", str(path)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_schedules_list_and_unreachable_cluster() -> None:
    listed = runner.invoke(app, ["schedules", "list", "--file", str(FILE)])
    assert listed.exit_code == 0 and "nbaf-retrain-" in listed.output
    sync = runner.invoke(
        app, ["schedules", "sync", "--host", "http://127.0.0.1:1", "--file", str(FILE), "--dry-run"]
    )
    assert sync.exit_code == 2 and "cannot reach the KFP API" in sync.output
    submit = runner.invoke(app, ["pipeline", "submit", "nope", "--host", "http://127.0.0.1:1"])
    assert submit.exit_code == 2 and "unknown pipeline" in submit.output
