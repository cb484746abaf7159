"""`continuous_improvement` end to end through KFP's local runner, on real games and real
artifacts (SQLite log, registry on disk, a git repository for GitOps)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.writer import write_games
from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.registry import Registry
from nba_forecast.lifecycle.steps import rollout_state
from nba_forecast.lifecycle.training import with_features
from tests.e2e.test_lifecycle_cli import serve

runner = CliRunner()


@pytest.mark.slow
def test_continuous_improvement_runs_locally_and_starts_an_ab_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_games: pd.DataFrame
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    assert runner.invoke(app, ["bootstrap", "--through-season", "2012"]).exit_code == 0
    registry = Registry.open()
    v1 = registry.resolve("production")
    served = with_features(shipped_games)
    served = served[(served["season"] == 2013) & (served["game_date"] < "2014-03-01")]
    serve(tmp_path, served, {"A": v1})
    games = write_games(shipped_games[shipped_games["season"] == 2013], tmp_path / "new.parquet")
    result = runner.invoke(
        app,
        [
            "pipeline",
            "run",
            "continuous_improvement",
            "--local",
            "--root",
            str(tmp_path / "runs"),
            "--param",
            "as_of=2014-03-01T09:00:00Z",
            "--param",
            f"games_uri={games}",
            "--param",
            f"gitops_repo={tmp_path / 'gitops'}",
            "--param",
            "force_retrain=true",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "decision: A/B rollout started" in result.output
    for task in (
        "collect-predictions",
        "update-dejavu",
        "retrain-lstm",
        "validate-challenger",
        "register-version",
        "rollout-ab",
    ):
        assert task in result.output
    assert "recalibrate-conformal" not in result.output  # coverage had not drifted
    # the rollout tests the retrained version (update-dejavu may move the candidate alias
    # too: the tasks are independent), and the routing in Git says so
    challenger = rollout_state(registry).challenger
    assert registry.manifest(challenger)["data_window"]["trained_to"] < "2014-03-01"
    routing = gitops.read_routing(tmp_path / "gitops", "production")
    assert routing == {
        "production": v1,
        "challenger": challenger,
        "challenger_share": 0.1,
        "salt": challenger,
    }
    report = next((tmp_path / "runs").rglob("validate-challenger/report"))
    assert "Validation: candidate PASSED" in report.read_text()


def test_pipeline_compile_writes_every_pipeline(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pipeline", "compile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == [
        "continuous_improvement",
        "dejavu_update",
        "monitor",
        "recalibration",
        "retraining",
    ]
    native = list(yaml.safe_load_all((tmp_path / "kubernetes" / "retraining.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in native] == [
        ("Pipeline", "retraining"),
        ("PipelineVersion", "retraining-0-1-0"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipeline", "run", "nope", "--local"], "unknown pipeline"),
        (["pipeline", "run", "monitor"], "only --local"),
        (["pipeline", "run", "monitor", "--local", "--param", "window_days"], "bad --param"),
        (["pipeline", "run", "monitor", "--local", "--param", "colour=red"], "bad parameters"),
    ],
)
def test_pipeline_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--root", str(tmp_path)] if "--local" in args else args)
    assert result.exit_code == 2, result.output
    assert message in result.output
