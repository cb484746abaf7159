"""The README's demo command works: data summary, then the model evaluation."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_replay import assert_no_empty_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_make_demo_prints_data_summary_and_model_evaluation() -> None:
    result = subprocess.run(
        ["make", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "22,387" in result.stdout and "persistence" in result.stdout
    assert "ensemble" in result.stdout and "reports/evaluate/report.md" in result.stdout
    assert (ROOT / "reports" / "evaluate" / "evaluation.png").is_file()
    assert "continuous" in result.stdout and (ROOT / "reports" / "replay" / "replay.png").is_file()
    assert_two_seasons_as_one_production_run(ROOT / "reports" / "replay")
    # every step's time, and the total, at the end
    assert re.search(r"^  replay 2013-14 to 2014-15 +\d+ s$", result.stdout, re.M)
    assert re.search(r"^  total +\d+ s$", result.stdout, re.M)
    assert "continuous_improvement: local run" in result.stdout and "decision:" in result.stdout
    # issue 12: an A/B decided from traffic a real server served, routing from a git remote
    served = re.search(
        r"^served A/B: (\d+) games, (\d+) paired, decision: (promote|rollback|continue|ramp)$",
        result.stdout,
        re.M,
    )
    assert served, result.stdout[-2000:]
    assert int(served.group(2)) >= 0.9 * int(served.group(1)) > 0
    remote_log = subprocess.run(
        ["git", "-C", str(ROOT / "reports" / "gitops-remote.git"), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "A/B start" in remote_log


def assert_two_seasons_as_one_production_run(out: Path) -> None:
    """Issue 14's acceptance on the demo's replay (2013-14 and 2014-15 as one run)."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seasons"] == [2013, 2014]
    frozen, continuous = summary["metrics"]["frozen"], summary["metrics"]["continuous"]
    for season in ("2013", "2014", "all"):
        assert abs(continuous[season]["coverage"] - 0.95) <= 0.01, season
        # the frozen model is as good as any in these two seasons: not worse beyond noise
        assert continuous[season]["mae"] <= frozen[season]["mae"] + 0.01, season
        assert continuous[season]["mae"] < continuous[season]["persistence_mae"], season
    # retraining ran whenever its rule said it was due; never blocked by an A/B test
    steps = {row["step"]: row for row in summary["steps"]}
    assert steps["retrain"]["due"] == steps["retrain"]["ran"] >= 2
    assert steps["retrain"]["blocked"] == 0
    assert "recalibrate" not in steps  # no schedule: online adaptation recalibrates
    assert summary["events"]["retrain"] >= 2 and summary["events"]["promote"] >= 1
    assert summary["events"]["refresh"] >= 1  # analog updates that moved nothing
    report = (out / "report.md").read_text()
    assert "## By season" in report and "| retrain |" in report
    events = json.loads((out / "events.json").read_text())
    assert any(e["kind"] == "refresh" and "within the tolerance" in e["detail"] for e in events)
    assert_no_empty_experiment(out / "state" / "continuous")
