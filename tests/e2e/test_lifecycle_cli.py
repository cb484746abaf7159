"""Every lifecycle step by hand, through the CLI, on embedded defaults in a temp home."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.writer import write_games
from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.registry import Registry
from nba_forecast.lifecycle.training import with_features
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.settings import Settings
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def serve(home: Path, games: pd.DataFrame, versions: dict[str, str]) -> None:
    """Log forecasts like the server: production serves (arm A), others score in shadow."""
    settings = Settings()
    log = PredictionLog(settings.resolved_database_url()).migrate()
    registry = Registry.open()
    X, y = design_matrix(games)
    dates = pd.to_datetime(games["game_date"]).dt.tz_localize("UTC") + pd.Timedelta(hours=19)
    records, outcomes = [], []
    for arm, version in versions.items():
        model = HalftimeEnsemble.load(registry.pull(version, home / "pulled" / version))
        d = model.predict_details(X, n_analogs=1)
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
    registry = Registry.open()
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

    recal = run("recalibrate", "--as-of", as_of, "--window-days", "120", "--force")
    assert recal.exit_code == 0 and "candidate" in recal.output
    candidate = registry.resolve("candidate")
    assert candidate != v1
    rerun = run("recalibrate", "--as-of", as_of, "--window-days", "120", "--force")
    assert "unchanged" in rerun.output and len(registry.history()) == 2  # idempotent

    verdict = run("validate", "--season", "2013", "--out", str(tmp_path / "validation"))
    assert verdict.exit_code in (0, 1) and "Validation" in verdict.output
    report = json.loads((tmp_path / "validation" / "validation.json").read_text())
    assert report["n"] == 1230 and "persistence" in report["metrics"]

    new_games = shipped_games[shipped_games["season"] == 2013].head(100)
    games_file = write_games(new_games, tmp_path / "new.parquet")
    updated = run("update-dejavu", "--games", str(games_file), "--as-of", "2014-06-01")
    assert updated.exit_code == 0 and "100 games added" in updated.output
    dejavu_candidate = registry.resolve("candidate")

    started = run(
        "rollout",
        "start",
        "--repo",
        str(tmp_path / "gitops"),
        "--report",
        str(tmp_path / "validation" / "validation.md"),
    )
    assert started.exit_code == 0 and "running at 10%" in started.output
    commit = gitops._git(tmp_path / "gitops", "log", "-1", "--format=%B")
    assert "# Validation" in commit  # the validation report rides in the commit message
    later = with_features(shipped_games)
    later = later[later["season"] == 2014].head(450)
    serve(tmp_path, later, {"A": v1, "shadow": dejavu_candidate})
    decided = run("rollout", "decide", "--as-of", "2015-06-01", "--repo", str(tmp_path / "gitops"))
    assert decided.exit_code == 0
    assert ("promote" in decided.output) or ("rollback" in decided.output)
    state = run("rollout", "status", "--repo", str(tmp_path / "gitops"))
    assert state.exit_code == 0
    history_before = len(registry.history())
    run("rollout", "decide", "--as-of", "2015-06-01", "--repo", str(tmp_path / "gitops"))
    assert len(registry.history()) == history_before  # re-running changes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collect", "--as-of", "yesterday"], "bad --as-of"),
        (["monitor", "--window-days", "0"], "0"),
        (["recalibrate", "--force"], "no alias or version 'production'"),
        (["retrain", "--force"], "no alias or version 'production'"),
        (["rollout", "explode"], "unknown action"),
        (["rollout", "decide"], "no rollout started"),
        (["validate", "--season", "1990"], "no games to validate on (season 1990)"),
        (["update-dejavu", "--games", "missing.parquet"], "no such file"),
    ],
)
def test_lifecycle_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
