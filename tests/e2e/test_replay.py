"""`nba-forecast replay`: the main job's acceptance numbers, real and drift scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.lifecycle.policy import Policy
from nba_forecast.lifecycle.training import with_features
from nba_forecast.lifecycle.versions import load_model
from nba_forecast.models.inputs import design_matrix
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry

runner = CliRunner()


def _replay(out: Path, *args: str) -> dict:
    result = runner.invoke(app, ["replay", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    summary["output"] = result.output
    return summary


def newer_season(games: pd.DataFrame, path: Path) -> Path:
    """A margins file holding a "2015-16" season: the 2014-15 games a year later (ids and
    dates moved on), as a user adds seasons newer than the shipped ones with --data."""
    later = games[games["season"] == 2014].copy()
    later["game_id"] = later["game_id"].str.replace(r"^(\d{3})14", r"\g<1>15", regex=True)
    later["season"] = 2015
    later["game_date"] = (pd.to_datetime(later["game_date"]) + pd.Timedelta(days=364)).dt.strftime(
        "%Y-%m-%d"
    )
    later.to_csv(path, index=False)
    return path


@pytest.mark.e2e
@pytest.mark.slow
def test_a_season_newer_than_the_shipped_ones_replays_from_data(
    tmp_path: Path, shipped_games: pd.DataFrame
) -> None:
    """A user's --data file adds 2015-16; it replays like a shipped season. (Several
    seasons as one run: `make demo`'s replay, checked in test_readme_commands.)"""
    data = newer_season(shipped_games, tmp_path / "newer.csv")
    summary = _replay(tmp_path / "out", "--season", "2015", "--data", str(data))
    assert summary["seasons"] == [2015]
    frozen, continuous = summary["metrics"]["frozen"], summary["metrics"]["continuous"]
    assert continuous["2015"]["games"] == (shipped_games["season"] == 2014).sum()
    assert abs(continuous["2015"]["coverage"] - 0.95) <= 0.015
    assert continuous["2015"]["mae"] <= frozen["2015"]["mae"] + 0.01
    assert continuous["2015"]["mae"] < continuous["2015"]["persistence_mae"]
    steps = {row["step"]: row for row in summary["steps"]}
    assert steps["retrain"]["due"] == steps["retrain"]["ran"] >= 1
    assert steps["retrain"]["blocked"] == 0
    out = tmp_path / "out"
    assert (out / "replay.png").read_bytes()[:4] == b"\x89PNG"
    assert "lifecycle events" in summary["output"] and "whole run" in summary["output"]
    state = out / "state" / "continuous"
    both = pd.concat([shipped_games, pd.read_csv(data, dtype={"game_id": str})])
    assert_every_forecast_reproducible(state, both)


def assert_no_empty_experiment(state: Path) -> None:
    """Every challenger that served in an A/B test forecast differently from the champion
    on the games both scored (mean absolute difference above the policy's tolerance)."""
    log = PredictionLog(f"sqlite:///{state / 'predictions.db'}")
    logged = pd.read_sql_table("predictions", log.engine)
    log.engine.dispose()
    shadowed = logged[logged["game_id"].isin(logged.loc[logged["arm"] == "shadow", "game_id"])]
    pairs = shadowed.pivot_table(index="game_id", columns="arm", values="forecast", aggfunc="first")
    versions = shadowed.pivot_table(
        index="game_id", columns="arm", values="model_version", aggfunc="first"
    )
    served = pairs["A"].fillna(pairs["B"])
    difference = (served - pairs["shadow"]).abs()
    challenger = np.where(versions["A"].notna(), versions["shadow"], versions["B"])
    by_challenger = difference.groupby(challenger).mean()
    assert len(by_challenger) >= 1
    assert (by_challenger > Policy().equivalence_tolerance).all(), by_challenger


def assert_every_forecast_reproducible(state: Path, games: pd.DataFrame) -> None:
    """Every logged forecast, served or shadow, equals what the registered version it names
    forecasts for that game, bit for bit: no version changed while it served (a retrain
    once refitted production's LSTM in place, and champion and challenger shared it)."""
    log = PredictionLog(f"sqlite:///{state / 'predictions.db'}")
    logged = pd.read_sql_table("predictions", log.engine)
    log.engine.dispose()
    registry = Registry(FileStore(state / "registry"))
    data = with_features(games).set_index("game_id")
    assert logged["model_version"].nunique() >= 3
    for version, rows in logged.groupby("model_version"):
        model = load_model(registry, str(version))
        X, _ = design_matrix(data.loc[rows["game_id"]].reset_index())
        again = [model.predict(X[i : i + 1])[0] for i in range(len(X))]  # as served: one row
        # the same model and inputs; BLAS may sum in another order under load (1 ulp seen)
        np.testing.assert_allclose(
            again, rows["forecast"].to_numpy(), rtol=0, atol=1e-9, err_msg=str(version)
        )


@pytest.mark.e2e
@pytest.mark.slow
def test_drift_scenario(tmp_path: Path) -> None:
    summary = _replay(tmp_path, "--drift")
    frozen, continuous = (
        summary["metrics"]["frozen"]["all"],
        summary["metrics"]["continuous"]["all"],
    )
    assert frozen["coverage"] < 0.90
    assert abs(continuous["coverage"] - 0.95) <= 0.02
    # the intervals widened with the variance (online adaptation, retraining)
    assert continuous["width"] > 1.1 * frozen["width"]
    assert continuous["winkler"] < frozen["winkler"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--season", "1990"], "no games of season(s) [1990]"),
        (["--seasons", "2013-2016"], "no games of season(s) [2015, 2016]"),
        (["--seasons", "2014-2010"], "the first not after the last"),
        (["--seasons", "twenty"], "expected a start year or a range like 2010-2014"),
        (["--seasons", "2010-"], "expected a start year or a range"),
        (["--seasons", "0-20000000"], "expected start years from 1946 to 2100"),
        (["--seasons", "2014-16"], "2014-16 is not a season; try 2014-2015"),
        (["--seasons", "1996-2030"], "no games of season(s) [2015, ..., 2030]"),
        (["--data", "missing.parquet"], "no such file"),
    ],
)
def test_replay_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["replay", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_seasons_by_their_own_name() -> None:
    from nba_forecast.cli.replay import parse_seasons

    assert parse_seasons("2014-15") == [2014, 2015]
    assert parse_seasons("1999-00") == [1999, 2000]
    assert parse_seasons(" 2010 - 2012 ") == [2010, 2011, 2012]
    assert parse_seasons("2014") == [2014]
