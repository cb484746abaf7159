"""Every lifecycle step by hand, through the CLI, on embedded defaults in a temp home."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.cli.lifecycle import context
from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.training import with_features
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionRecord

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def serve(home: Path, games: pd.DataFrame, versions: dict[str, str]) -> None:
    """Log forecasts like the server: production serves (arm A), others score in shadow."""
    ctx = context()
    log, registry = ctx.log, ctx.registry
    X, y = design_matrix(games)
    dates = pd.to_datetime(games["game_date"]).dt.tz_localize("UTC") + pd.Timedelta(hours=19)
    records, outcomes = [], []
    for arm, version in versions.items():
        model = HalftimeEnsemble.load(registry.pull(version, home / "pulled" / version))
        d = model.predict_details(X)
        for i, game_id in enumerate(games["game_id"]):
            records.append(
                PredictionRecord(
                    game_id,
                    dates.iloc[i].to_pydatetime(),
                    version,
                    arm,
                    float(d.forecast[i]),
                    float(d.lower[i]),
                    float(d.upper[i]),
                )
            )
    for i, game_id in enumerate(games["game_id"]):
        outcomes.append(
            OutcomeRecord(
                game_id, float(y[i]), dates.iloc[i].to_pydatetime() + dt.timedelta(minutes=20)
            )
        )
    log.record_predictions(records)
    log.record_outcomes(outcomes)
    log.engine.dispose()


@pytest.mark.e2e
@pytest.mark.slow
def test_lifecycle_steps_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_games: pd.DataFrame
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    assert run("bootstrap", "--through-season", "2012").exit_code == 0
    again = run("bootstrap")
    assert again.exit_code == 2 and "already exists" in again.output
    registry = context().registry
    repo = tmp_path / "home" / "gitops"
    v1 = registry.resolve("production")
    season = with_features(shipped_games)
    season = season[season["season"] == 2013].head(400)
    serve(tmp_path, season, {"A": v1})
    as_of = "2014-01-31T12:00:00Z"

    collected = run(
        "collect", "--as-of", as_of, "--window-days", "120", "--out", str(tmp_path / "rows.parquet")
    )
    assert collected.exit_code == 0 and v1 in collected.output
    assert len(pd.read_parquet(tmp_path / "rows.parquet")) == 400

    monitored = run(
        "monitor",
        "--as-of",
        as_of,
        "--window-days",
        "120",
        "--prometheus",
        str(tmp_path / "metrics.prom"),
    )
    assert monitored.exit_code == 0
    assert "nba_halftime_coverage" in (tmp_path / "metrics.prom").read_text()

    recal = run("recalibrate", "--as-of", as_of, "--window-days", "120", "--force", "--only")
    assert recal.exit_code == 0, recal.output
    candidate = registry.resolve("candidate")
    assert candidate != v1 and registry.resolve("production") == v1  # --only: no roll forward
    rerun = run("recalibrate", "--as-of", as_of, "--window-days", "120", "--force", "--only")
    assert rerun.exit_code == 0 and len(registry.history()) == 2  # idempotent

    verdict = run("validate", "--season", "2013", "--out", str(tmp_path / "validation"))
    assert verdict.exit_code in (0, 1) and "Validation" in verdict.output
    report = json.loads((tmp_path / "validation" / "validation.json").read_text())
    assert report["n"] == 1230 and "persistence" in report["metrics"]

    # the policy's follow-up: a recalibration rolls forward at once, routing in Git
    forward = run("recalibrate", "--as-of", as_of, "--window-days", "120", "--force")
    assert forward.exit_code == 0 and "roll_forward: production" in forward.output
    assert registry.resolve("production") == candidate
    assert gitops.GitOpsTarget(repo).read().production == candidate

    # games finished since the analog database was filled join it; the new version forecasts
    # like production (Dejavu's share is small): rolled forward as a data refresh, no A/B
    updated = run("update-dejavu", "--as-of", "2013-11-10")
    assert updated.exit_code == 0 and "games added" in updated.output, updated.output
    assert "start_rollout: data refresh, no A/B test" in " ".join(updated.output.split())
    refreshed = registry.resolve("production")
    assert refreshed == registry.resolve("candidate") != candidate
    routing = gitops.GitOpsTarget(repo).read()
    assert routing.production == refreshed and routing.challenger is None
    # a person may still test an update: --only, then an A/B without the comparison
    more = run("update-dejavu", "--as-of", "2013-11-20", "--only")
    assert more.exit_code == 0 and "games added" in more.output, more.output
    dejavu_candidate = registry.resolve("candidate")
    started = run("rollout", "start", "--no-compare", "--as-of", "2013-11-20T12:00:00Z")
    assert started.exit_code == 0 and "not compared" in " ".join(started.output.split())
    assert gitops.GitOpsTarget(repo).read().challenger == dejavu_candidate
    blocked = run("update-dejavu", "--as-of", "2013-11-27")
    assert blocked.exit_code == 0 and "skipped: the A/B test" in blocked.output
    status = run("rollout", "status")
    assert status.exit_code == 0 and "running at 10%" in status.output

    later = with_features(shipped_games)
    later = later[later["season"] == 2014].head(450)
    serve(tmp_path, later, {"A": refreshed, "shadow": dejavu_candidate})
    decided = run("rollout", "decide", "--as-of", "2015-06-01")
    assert decided.exit_code == 0
    assert ("promote" in decided.output) or ("rollback" in decided.output), decided.output
    history_before = len(registry.history())
    run("rollout", "decide", "--as-of", "2015-06-01")
    assert len(registry.history()) == history_before  # re-running changes nothing
    commit = gitops._git(repo, "log", "-1", "--format=%B")
    assert "paired games" in commit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collect", "--as-of", "yesterday"], "bad --as-of"),
        (["monitor", "--window-days", "0"], "0"),
        (["recalibrate", "--force"], "no alias or version 'production'"),
        (["retrain", "--force"], "no alias or version 'production'"),
        (["rollout", "explode"], "unknown action"),
        (["rollout", "start"], "no alias or version 'production'"),
        (["validate", "--season", "1990"], "no games to validate on in season 1990"),
        (["update-dejavu", "--data", "missing.parquet"], "no such file"),
    ],
)
def test_lifecycle_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
