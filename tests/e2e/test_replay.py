"""`nba-forecast replay`: the main job's acceptance numbers, real and drift scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
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


@pytest.mark.e2e
@pytest.mark.slow
def test_real_season_replay(tmp_path: Path, shipped_games: pd.DataFrame) -> None:
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
    assert summary["events"]["retrain"] >= 1
    assert_every_forecast_reproducible(tmp_path / "state" / "continuous", shipped_games)


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
