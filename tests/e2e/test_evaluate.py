"""`nba-forecast evaluate` on the shipped data: the acceptance numbers of the forecasting
core, on the real 2013-14 and 2014-15 seasons."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.writer import write_games

runner = CliRunner()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("evaluate")
    result = runner.invoke(
        app, ["evaluate", "--test-seasons", "2013-14,2014-15", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    return {"output": result.output, "dir": out, "metrics": metrics}


@pytest.mark.e2e
@pytest.mark.slow
def test_ensemble_beats_persistence_with_honest_intervals(report: dict) -> None:
    models = {m["model"]: m for m in report["metrics"]["models"]}
    persistence = models["persistence"]["mae"]
    assert persistence == pytest.approx(4.548, abs=0.001)
    ensemble = models["ensemble"]
    assert ensemble["mae"] <= 0.985 * persistence
    assert ensemble["dm_p_value"] < 0.01
    assert models["lstm"]["mae"] < persistence and models["dejavu"]["mae"] < persistence
    assert ensemble["mean_width"] <= 23
    seasons = [r for r in report["metrics"]["by_season"] if r["model"] == "ensemble"]
    assert {r["season"] for r in seasons} == {2013, 2014}
    for row in seasons:
        assert 0.935 <= row["coverage"] <= 0.965


@pytest.mark.e2e
@pytest.mark.slow
def test_evaluate_writes_report_table_and_figure(report: dict) -> None:
    assert "ensemble" in report["output"] and "persistence" in report["output"]
    text = (report["dir"] / "report.md").read_text()
    assert "Diebold-Mariano" in text and "2013-14" in text and "evaluation.png" in text
    png = (report["dir"] / "evaluation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test-seasons", "20x3"], "bad season"),
        (["--test-seasons", "2030"], "not in the data"),
        (["--test-seasons", "1997"], "no training seasons"),
        (["--test-seasons", ","], "empty"),
        (["--data", "missing.parquet"], "no such file"),
    ],
)
def test_evaluate_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_evaluate_data_file_without_valid_games(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    row = {"game_id": "0021500001", "season": "2015", **{f"m_{k}": "0" for k in range(25)}}
    row["m_7"] = "x"
    pd.DataFrame([row]).to_csv(bad, index=False)
    result = runner.invoke(app, ["evaluate", "--data", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no valid games" in result.output


@pytest.mark.slow
def test_evaluate_with_added_newer_season(tmp_path: Path, shipped_games: pd.DataFrame) -> None:
    """--data adds newer games; here a copy of 2014-15 relabelled as 2015-16 test season."""
    newer = shipped_games[shipped_games["season"] == 2014].copy()
    newer["game_id"] = "00215" + newer["game_id"].str.slice(5)
    newer["season"] = 2015
    newer["game_date"] = newer["game_date"] + pd.Timedelta(days=365)
    path = write_games(newer, tmp_path / "newer.parquet")
    result = runner.invoke(
        app,
        ["evaluate", "--data", str(path), "--test-seasons", "2015", "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test_seasons"] == [2015]
    assert metrics["models"][0]["n"] == 1229
