"""Batch prediction end to end with a real registry: ``nba-forecast predict`` (a file of games
in, a file of forecasts out) and ``POST /v1/predict/batch`` on the FastAPI app; neither logs
a forecast unless asked, and bad input gets one specific error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.pregame import latest_team_strength
from nba_forecast.forecast_table import forecast_games
from nba_forecast.lifecycle.training import train_ensemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.serving.app import create_app
from nba_forecast.serving.batch import MAX_BATCH_GAMES
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry
from nba_forecast.storage.spool import SpoolingPredictionLog

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, shipped_games: pd.DataFrame) -> dict:
    root = tmp_path_factory.mktemp("batch")
    registry = Registry(FileStore(root / "registry"))
    history = shipped_games[shipped_games["season"].between(2010, 2012)]
    model, _ = train_ensemble(history, validation_games=600, calibration_games=600)
    v1 = registry.register(model.save(root / "v1")).version
    registry.promote("production", v1, reason="test")
    # a second version: the same components, its interval calibrated on other games
    X, y = design_matrix(history.tail(400).assign(team_strength=0.0, back_to_back=0.0))
    other = model.recalibrated(y, model.predict(X), half_life=None)
    v2 = registry.register(other.save(root / "v2")).version
    games = shipped_games[shipped_games["season"] == 2013].iloc[200:240]
    games.to_csv(root / "games.csv", index=False)
    games.to_parquet(root / "games.parquet", index=False)
    return {
        "root": root,
        "registry": registry,
        "url": (root / "registry").as_uri(),
        "model": model,
        "v1": v1,
        "v2": v2,
        "games": games,
        "strength": latest_team_strength(history),
    }


def _predict(deployed: dict, tmp_path: Path, *args: str) -> Any:
    env = {"NBA_FORECAST_HOME": str(tmp_path / "home")}
    return runner.invoke(app, ["predict", "--registry-url", deployed["url"], *args], env=env)


# -- the command ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_predict_writes_the_forecasts_of_every_game(
    deployed: dict, tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"forecasts{suffix}"
    result = _predict(deployed, tmp_path, "--in", str(deployed["root"] / "games.csv"),
                      "--out", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"40 games forecast by {deployed['v1']} (production), 95% intervals; wrote {target}"
    )
    written = {
        ".parquet": pd.read_parquet,
        ".csv": lambda p: pd.read_csv(p, dtype={"game_id": str}),
        ".json": lambda p: pd.DataFrame(json.loads(Path(p).read_text())),
    }[suffix](target)
    expected = forecast_games(deployed["model"], deployed["games"])
    assert list(written["game_id"]) == list(deployed["games"]["game_id"])
    assert list(written["game_date"].astype(str)) == list(
        expected["game_date"].dt.strftime("%Y-%m-%d")
    )
    for column in ("forecast", "lower", "upper", "team_strength"):
        np.testing.assert_allclose(written[column], expected[column], rtol=1e-9)
    # nothing was logged: no prediction database was even created
    assert not (tmp_path / "home" / "predictions.db").exists()


def test_predict_a_version_id_from_parquet_at_another_level(deployed: dict, tmp_path: Path) -> None:
    target = tmp_path / "f.parquet"
    source = str(deployed["root"] / "games.parquet")
    args = ["--in", source, "--out", str(target), "--model", deployed["v2"], "--alpha", "0.2"]
    result = _predict(deployed, tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert "80% intervals" in result.stdout
    written = pd.read_parquet(target)
    reference = forecast_games(deployed["model"], deployed["games"], alpha=0.2)
    np.testing.assert_allclose(written["forecast"], reference["forecast"])


def test_predict_logs_only_when_asked(deployed: dict, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url).migrate()
    args = ["--in", str(deployed["root"] / "games.csv"), "--out", str(tmp_path / "f.csv")]
    assert _predict(deployed, tmp_path, *args, "--database-url", url).exit_code == 0
    assert log.counts()["predictions"] == 0
    result = _predict(deployed, tmp_path, *args, "--database-url", url, "--log")
    assert result.exit_code == 0, result.output
    assert "logged 40; 0 already had a forecast (kept)" in result.stdout
    assert log.counts()["predictions"] == 40
    again = _predict(deployed, tmp_path, *args, "--database-url", url, "--log")
    assert "logged 0; 40 already had a forecast (kept)" in again.stdout
    assert log.counts()["predictions"] == 40


def _games_file(deployed: dict, path: Path, edit: Any) -> str:
    edit(deployed["games"].copy()).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--in", "{root}/missing.csv"], r"missing.csv: no such file"),
        (["--in", "{root}/games.xlsx"], r"games.xlsx: expected a \.csv, \.csv\.gz, \.parquet"),
        (["--out", "{tmp}/f.xlsx"], r"--out .*f.xlsx: expected a \.parquet, \.csv, \.json file"),
        (["--model", "staging"], r"model 'staging': no alias or version 'staging' \(aliases: "
         r"production\)"),
        (["--model", "0123456789abcdef"], r"model '0123456789abcdef': no version 0123456789abcdef"),
        (["--alpha", "1.5"], r"--alpha 1.5: must be between 0 and 1"),
        (["--in", "{columns}", "--out", "{columns}"], r"is the --in file: the games would be"),
        (["--in", "{columns}"], r"lacks column\(s\) m_7; it needs game_date"),
        (["--in", "{team}"], r"unknown team\(s\) 'XYZ' in row 2 \(0021300202\)"),
        (["--in", "{no_ids}", "--log"], r"--log needs a game_id for every game"),
    ],
)  # fmt: skip
def test_predict_bad_input_is_one_line_and_exit_2(
    deployed: dict, tmp_path: Path, args: list[str], message: str
) -> None:
    files = {
        "root": str(deployed["root"]),
        "tmp": str(tmp_path),
        "columns": _games_file(deployed, tmp_path / "a.csv", lambda g: g.drop(columns="m_7")),
        "team": _games_file(deployed, tmp_path / "b.csv", lambda g: g.assign(
            home_team=g["home_team"].where(np.arange(len(g)) != 1, "XYZ"))),
        "no_ids": _games_file(deployed, tmp_path / "c.csv", lambda g: g.drop(columns="game_id")),
    }  # fmt: skip
    defaults = {"--in": str(deployed["root"] / "games.csv"), "--out": str(tmp_path / "f.csv")}
    given = [a.format(**files) for a in args]
    for option, value in defaults.items():
        if option not in given:
            given += [option, value]
    result = _predict(deployed, tmp_path, *given)
    assert result.exit_code == 2, result.output
    assert re.search(message, result.stderr), result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "f.csv").exists()


def test_the_command_prints_one_line_and_no_logging_unless_verbose(
    deployed: dict, tmp_path: Path
) -> None:
    """A real process with its output redirected: no log lines, no terminal codes."""
    command = [sys.executable, "-m", "nba_forecast.cli", "predict", "--registry-url",
               deployed["url"], "--in", str(deployed["root"] / "games.csv"),
               "--out", str(tmp_path / "f.parquet")]  # fmt: skip
    env = {**os.environ, "NBA_FORECAST_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.count("\n") == 1
    assert "\x1b[" not in quiet.stdout
    verbose = subprocess.run([*command, "-v"], capture_output=True, text=True, env=env)
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO nba_forecast" in verbose.stderr


# -- the endpoint --------------------------------------------------------------------------
@pytest.fixture
def server(deployed: dict, tmp_path: Path) -> dict:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    engine = ForecastEngine(
        deployed["registry"],
        SpoolingPredictionLog(log, tmp_path / "spool"),
        cache_dir=deployed["root"] / "cache",
        routing_file=tmp_path / "routing.json",
        team_strength=deployed["strength"],
    )
    return {"client": TestClient(create_app(engine)), "log": log, "engine": engine,
            "routing": tmp_path / "routing.json"}  # fmt: skip


def _game(row: Any, with_id: bool = True) -> dict[str, Any]:
    game = {
        "margins": [float(row[f"m_{k}"]) for k in range(19)],
        "home_team": row["home_team"],
        "away_team": row["away_team"],
    }
    return {"game_id": row["game_id"], **game} if with_id else game


def _games(deployed: dict, n: int = 40, with_id: bool = True) -> list[dict[str, Any]]:
    rows = deployed["games"].head(n).to_dict("records")
    return [_game(row, with_id) for row in rows]


def test_batch_gives_what_predict_gives_and_logs_nothing(server: dict, deployed: dict) -> None:
    client = server["client"]
    games = _games(deployed)
    response = client.post("/v1/predict/batch", json={"games": games})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["logged"] == 0 and len(body["forecasts"]) == 40
    for game, answer in zip(games, body["forecasts"], strict=True):
        single = client.post("/v1/predict", json={k: v for k, v in game.items() if k != "game_id"})
        assert answer["forecast"] == pytest.approx(single.json()["forecast"], abs=1e-4)
        assert answer["upper"] - answer["lower"] == pytest.approx(
            single.json()["upper"] - single.json()["lower"], abs=1e-4
        )
        assert answer["game_id"] == game["game_id"] and answer["status"] == "not logged"
        assert answer["model_version"] == deployed["v1"] and answer["arm"] == "A"
        assert set(answer["components"]) == {"damped_persistence", "linear", "dejavu", "lstm"}
    assert server["log"].counts()["predictions"] == 0
    without_ids = client.post("/v1/predict/batch", json={"games": _games(deployed, 3, False)})
    assert [f["game_id"] for f in without_ids.json()["forecasts"]] == [None] * 3


def test_batch_logs_each_game_once_when_asked(server: dict, deployed: dict) -> None:
    client = server["client"]
    games = _games(deployed, 10)
    first = client.post("/v1/predict/batch", json={"games": games, "log": True}).json()
    assert first["logged"] == 10 and {f["status"] for f in first["forecasts"]} == {"logged"}
    assert server["log"].counts()["predictions"] == 10
    again = client.post("/v1/predict/batch", json={"games": games, "log": True}).json()
    assert again["logged"] == 0 and {f["status"] for f in again["forecasts"]} == {"repeat"}
    assert [f["forecast"] for f in again["forecasts"]] == [
        f["forecast"] for f in first["forecasts"]
    ]
    changed = [{**games[0], "margins": [0.0] * 19}, *games[1:3]]
    third = client.post("/v1/predict/batch", json={"games": changed, "log": True}).json()
    assert [f["status"] for f in third["forecasts"]] == ["conflict", "repeat", "repeat"]
    assert third["forecasts"][0]["forecast"] == first["forecasts"][0]["forecast"]  # it stands
    single = client.post("/v1/predict", json=games[4]).json()  # /v1/predict sees the same log
    assert single["forecast"] == first["forecasts"][4]["forecast"]
    assert server["log"].counts()["predictions"] == 10


def test_batch_routes_games_as_the_engine_does(server: dict, deployed: dict) -> None:
    server["routing"].write_text(json.dumps({"production": deployed["v1"],
        "challenger": deployed["v2"], "challenger_share": 0.5, "salt": "exp-2"}))  # fmt: skip
    engine = server["engine"]
    engine.reload(force=True)
    games = _games(deployed)
    body = server["client"].post("/v1/predict/batch", json={"games": games, "log": True}).json()
    arms = set()
    for game, answer in zip(games, body["forecasts"], strict=True):
        X = engine.row(game["margins"], game["home_team"], game["away_team"])
        served = engine.score(game["game_id"], X)[0]
        assert (answer["arm"], answer["model_version"]) == (served.arm, served.model_version)
        assert answer["forecast"] == pytest.approx(served.forecast, abs=1e-4)
        assert answer["upper"] - answer["lower"] == pytest.approx(
            served.upper - served.lower, abs=1e-4
        )
        arms.add(answer["arm"])
    assert arms == {"A", "B"}
    assert server["log"].counts()["predictions"] == 80  # each game: served and shadow


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda g: {"games": g * 6}, f"at most {MAX_BATCH_GAMES} items"),
        (lambda g: {"games": []}, "at least 1 item"),
        (lambda g: {"games": [{**g[0], "home_team": "XYZ"}, *g[1:]]},
         r"unknown team\(s\): 'XYZ' in games \[0\]; known teams: ATL, BKN"),
        (lambda g: {"games": [{**g[0], "away_team": "tor"}]}, "should match pattern"),
        (lambda g: {"games": [g[0], g[0]]}, r"game id\(s\) \['0021300201'\] appear more than once"),
        (lambda g: {"games": [{k: v for k, v in g[0].items() if k != "game_id"}], "log": True},
         r'"log\\": true needs a game_id for every game; games \[0\]'),
        (lambda g: {"games": [g[0], {**g[1], "margins": [0.0] * 18 + [60.0]}]},
         r"games.*1.*margins.*is possible"),
        (lambda g: {"games": g[:2], "log": "yes"}, "valid boolean"),
        (lambda g: {"games": g[:2], "alpha": 0.1}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_batch_bad_input_is_422_with_the_reason(
    server: dict, deployed: dict, edit: Any, message: str
) -> None:
    response = server["client"].post("/v1/predict/batch", json=edit(_games(deployed)))
    assert response.status_code == 422, response.text
    assert re.search(message, response.text), response.text
    assert server["log"].counts()["predictions"] == 0


def test_batch_needs_the_token_when_the_server_has_one(deployed: dict, server: dict) -> None:
    client = TestClient(create_app(server["engine"], token="s3cret"))
    body = {"games": _games(deployed, 2)}
    assert client.post("/v1/predict/batch", json=body).status_code == 401
    headers = {"Authorization": "Bearer s3cret"}
    assert client.post("/v1/predict/batch", json=body, headers=headers).status_code == 200


@pytest.mark.parametrize("team", ["XYZ", "TOO"])
def test_single_predict_refuses_an_unknown_team_too(
    server: dict, deployed: dict, team: str
) -> None:
    game = _games(deployed, 1, with_id=False)[0]
    response = server["client"].post("/v1/predict", json={**game, "home_team": team})
    assert response.status_code == 422, response.text
    assert f"unknown team(s): {team!r}" in response.json()["detail"]
    assert server["log"].counts()["predictions"] == 0
