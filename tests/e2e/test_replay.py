"""`nba-forecast replay`: the main job's acceptance numbers, real and drift scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app

runner = CliRunner()


def _replay(out: Path, *args: str) -> dict:
    result = runner.invoke(app, ["replay", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    summary["output"] = result.output
    return summary


@pytest.mark.e2e
@pytest.mark.slow
def test_real_season_replay(tmp_path: Path) -> None:
    summary = _replay(tmp_path, "--season", "2014")
    frozen, continuous = summary["frozen"], summary["continuous"]
    assert abs(continuous["coverage"] - 0.95) <= 0.015
    assert continuous["mae"] <= frozen["mae"] + 0.01  # not worse beyond noise
    assert continuous["mae"] < continuous["persistence_mae"]
    assert summary["events"]["promote"] >= 1
    assert (tmp_path / "replay.png").read_bytes()[:4] == b"\x89PNG"
    assert "frozen" in summary["output"] and "continuous" in summary["output"]
    # the GitOps repository recorded every routing change
    gitops = tmp_path / "state" / "continuous" / "gitops"
    assert (gitops / "manifests" / "overlays" / "production" / "model-routing.yaml").exists()


@pytest.mark.e2e
@pytest.mark.slow
def test_drift_scenario(tmp_path: Path) -> None:
    summary = _replay(tmp_path, "--drift")
    assert summary["frozen"]["coverage"] < 0.90
    assert abs(summary["continuous"]["coverage"] - 0.95) <= 0.02
    # the intervals widened with the variance (online adaptation, retraining)
    assert summary["continuous"]["width"] > 1.1 * summary["frozen"]["width"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--season", "1990"], "not in the data"), (["--data", "missing.parquet"], "no such file")],
)
def test_replay_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["replay", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
