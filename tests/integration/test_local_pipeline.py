"""`continuous_improvement` end to end through KFP's local runner, on real games and real
artifacts (SQLite log, registry on disk, a git repository for GitOps)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.cli.lifecycle import context
from nba_forecast.data.writer import write_games
from nba_forecast.lifecycle.promotion import rollout_state
from nba_forecast.lifecycle.training import with_features
from nba_forecast.routing import Routing
from tests.e2e.test_lifecycle_cli import serve

runner = CliRunner()
EXAMPLE_SECRETS = Path(__file__).resolve().parents[2] / "manifests" / "secrets.example.yaml"


def run_local(name: str, tmp_path: Path, *params: str):  # type: ignore[no-untyped-def]
    args = ["pipeline", "run", name, "--local", "--root", str(tmp_path / "runs")]
    for param in params:
        args += ["--param", param]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_retrain_pipeline_runs_the_policy_chain_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_games: pd.DataFrame
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    # what the ConfigMap and Secrets give a task: a task never falls back to its home
    monkeypatch.setenv("NBA_FORECAST_REGISTRY_URL", (tmp_path / "registry").as_uri())
    monkeypatch.setenv("NBA_FORECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    monkeypatch.setenv("NBA_FORECAST_GITOPS_REPO", str(tmp_path / "gitops"))
    monkeypatch.setenv("NBA_FORECAST_ENVIRONMENT", "production")
    assert runner.invoke(app, ["bootstrap", "--through-season", "2012"]).exit_code == 0
    ctx = context()
    v1 = ctx.registry.resolve("production")
    served = with_features(shipped_games)
    served = served[(served["season"] == 2013) & (served["game_date"] < "2014-03-01")]
    serve(tmp_path, served, {"A": v1})
    games = write_games(shipped_games[shipped_games["season"] == 2013], tmp_path / "new.parquet")
    as_of = "as_of=2014-03-01T09:00:00Z"
    result = run_local("retrain", tmp_path, as_of, f"games_uri={games}", "force=true")
    for task in ("retrain-lstm", "validate-challenger", "register-version", "rollout-ab"):
        assert task in result.output
    assert "decision: rollout-ab" in result.output and "A/B start" in result.output
    challenger = rollout_state(ctx).challenger
    assert ctx.registry.manifest(challenger).trained_to < "2014-03-01"
    assert ctx.gitops.read() == Routing(v1, challenger, 0.1, f"{challenger}-2014-03-01")
    report = next((tmp_path / "runs").rglob("validate-challenger/report"))
    assert "Validation: candidate PASSED" in report.read_text()
    # the whole loop at the same time: no drift, and the running A/B test holds back the
    # steps that would start another (the policy, as in the CLI and the replay)
    result = run_local("continuous_improvement", tmp_path, as_of, f"games_uri={games}")
    # coverage had not drifted: listed as skipped, with why, in the order the DAG runs
    rows = [line.split("│")[1:3] for line in result.output.splitlines() if line.startswith("│")]
    shown = {task.strip(): status.strip() for task, status in rows}
    assert shown["recalibrate-conformal"] == "skipped"
    assert "runs only if collect-predictions returned true" in result.output
    tasks = [task.strip() for task, _ in rows]
    assert (
        tasks.index("collect-predictions")
        < tasks.index("update-dejavu")
        < tasks.index("retrain-lstm")
        < tasks.index("record-run")
    )
    assert shown["validate-challenger"] == "skipped"
    assert "runs only if retrain-lstm returned a value" in result.output
    assert "decision: retrain-lstm -> nothing to do" in result.output
    assert rollout_state(ctx).challenger == challenger
    # the exit handler recorded both runs beside the registry
    records = sorted((tmp_path / "registry" / "runs").rglob("*.json"))
    assert [r.parent.name for r in records] == ["continuous_improvement", "retrain"]


def test_a_local_run_uses_this_machines_settings_and_prints_only_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On one machine the tasks use the embedded defaults (as a cluster's use their
    ConfigMap); the output is the table in execution order and the decision: the runner's
    narration and the tasks' logs go to a file (-v shows them), no colour codes."""
    for name in ("NBA_FORECAST_REGISTRY_URL", "NBA_FORECAST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    result = run_local("monitor", tmp_path)
    lines = result.output.splitlines()
    assert len(lines) < 15, result.output
    assert "\x1b[" not in result.output
    assert "executor_input" not in result.output and "INFO" not in result.output
    rows = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert rows == ["monitor-performance", "record-run"]
    assert "decision: monitor-performance -> 1" in result.output  # no forecasts yet: 1 alert
    assert (tmp_path / "home" / "predictions.db").is_file()
    log = next((tmp_path / "runs" / "logs").glob("monitor-*.log"))
    text = log.read_text()
    assert "Executing task" in text and "\x1b[" not in text
    assert str(log) in result.output
    timing = re.search(r"run ([0-9.]+) s, command ([0-9.]+) s", result.output)
    assert timing and float(timing.group(2)) >= float(timing.group(1)) > 0
    loud = runner.invoke(
        app, ["pipeline", "run", "monitor", "--local", "--root", str(tmp_path / "runs"), "-v"]
    )
    assert "Executing task" in loud.output and "\x1b[" not in loud.output


def test_pipeline_compile_writes_every_pipeline(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pipeline", "compile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == [
        "continuous_improvement",
        "decide_rollout",
        "monitor",
        "recalibrate",
        "retrain",
        "update_dejavu",
    ]
    native = list(yaml.safe_load_all((tmp_path / "kubernetes" / "retrain.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in native] == [
        ("Pipeline", "retrain"),
        ("PipelineVersion", "retrain-0-1-0"),
    ]


def test_a_local_run_without_as_of_means_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBA_FORECAST_REGISTRY_URL", (tmp_path / "registry").as_uri())
    monkeypatch.setenv("NBA_FORECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    assert runner.invoke(app, ["db", "upgrade", "--create"]).exit_code == 0
    (tmp_path / "registry").mkdir()
    result = run_local("monitor", tmp_path)  # no --param as_of: the placeholder is unresolvable
    assert "monitor-performance" in result.output and "decision:" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipeline", "run", "nope", "--local"], "unknown pipeline"),
        (["pipeline", "run", "monitor", "--runner", "kubernetes"], "unknown --runner"),
        (["pipeline", "run", "monitor", "--local", "--runner", "container"], "--local is"),
        (["pipeline", "run", "monitor", "--local", "--param", "window_days"], "bad --param"),
        (["pipeline", "run", "monitor", "--local", "--param", "colour=red"], "bad parameters"),
        (["pipeline", "run", "monitor", "--local", "--param", "window_days=abc"], "bad parameters"),
        (["pipeline", "run", "monitor", "--local", "--secrets", "s.yaml"], "container only"),
        (["pipeline", "run", "monitor", "--env", "staging"], "--env apply to --runner container"),
        (
            [
                "pipeline",
                "run",
                "monitor",
                "--runner",
                "container",
                "--secrets",
                str(EXAMPLE_SECRETS),
                "--docker-host",
                "tcp://127.0.0.1:1",
            ],
            "cannot reach the container API",
        ),
        (["pipeline", "run", "monitor", "--runner", "container"], "--secrets FILE"),
        (["pipeline", "run", "monitor", "--runner", "container", "--env", "../.."], "bad --env"),
        (["pipeline", "run", "monitor", "--runner", "container", "--env", "qa"], "have: prod"),
        (["pipeline", "run", "monitor", "--runner", "container", "--set-env", "1X=y"], "bad --set"),
        (
            ["pipeline", "run", "monitor", "--runner", "container", "--secrets", "/nope.yaml"],
            "cannot read the Secrets file /nope.yaml",
        ),
    ],
)
def test_pipeline_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--root", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
