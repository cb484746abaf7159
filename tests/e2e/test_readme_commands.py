"""The README's demo command works: data summary, then the model evaluation."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

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
