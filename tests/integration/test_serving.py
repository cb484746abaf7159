"""The server through HTTP (FastAPI's test client): forecasts, the live feed replaying a real
game, sticky A/B arms, a challenger swap without restart, fallbacks, health and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nba_forecast.data.pregame import latest_team_strength
from nba_forecast.data.shipped import load_shipped_events
from nba_forecast.lifecycle.training import train_ensemble
from nba_forecast.serving.app import create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry
from nba_forecast.storage.spool import SpoolingPredictionLog

GAME = "0021400333"  # TOR vs ... 2014-12-12, in the shipped data


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, shipped_games: pd.DataFrame) -> dict:
    root = tmp_path_factory.mktemp("serving")
    registry = Registry(FileStore(root / "registry"))
    history = shipped_games[shipped_games["season"].between(2010, 2012)]
    model, _ = train_ensemble(history, validation_games=600, calibration_games=600)
    v1 = registry.register(model.save(root / "v1")).version
    registry.promote("production", v1, reason="test")
    other, _ = train_ensemble(history, validation_games=600, calibration_games=600, random_state=1)
    v2 = registry.register(other.save(root / "v2")).version
    return {
        "root": root,
        "registry": registry,
        "v1": v1,
        "v2": v2,
        "strength": latest_team_strength(history),
    }


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
    return {
        "client": TestClient(create_app(engine)),
        "log": log,
        "engine": engine,
        "routing": tmp_path / "routing.json",
    }


MARGINS = [0, 2, 2, 4, 1, -1, 0, 3, 5, 5, 7, 6, 8, 10, 9, 9, 11, 12, 10]


def test_predict_returns_forecast_interval_components_and_analogs(
    server: dict, deployed: dict
) -> None:
    response = server["client"].post(
        "/v1/predict",
        json={"game_id": "g1", "margins": MARGINS, "home_team": "TOR", "away_team": "NYK"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lower"] < body["forecast"] < body["upper"]
    assert 15 < body["upper"] - body["lower"] < 28
    assert set(body["components"]) == {"damped_persistence", "linear", "dejavu", "lstm"}
    assert len(body["analogs"]) == 5 and body["analogs"][0]["game_id"]
    assert body["model_version"] == deployed["v1"] and body["arm"] == "A"
    assert abs(body["forecast"] - 10) < 6
    assert server["log"].counts()["predictions"] == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"margins": MARGINS[:18]}, "at least 19"),
        ({"margins": [*MARGINS[:18], 10.5]}, "whole number"),
        ({"margins": [3, *MARGINS[1:]]}, "the margin at tip-off is 0"),
        ({"margins": [*MARGINS[:18], 45]}, "is possible"),
        ({"margins": MARGINS, "game_id": "bad id!"}, "pattern"),
        ({"margins": MARGINS, "back_to_back": 3}, "less than or equal to 1"),
        ({}, "Field required"),
    ],
)
def test_predict_rejects_bad_input(server: dict, payload: dict, message: str) -> None:
    response = server["client"].post("/v1/predict", json=payload)
    assert response.status_code == 422
    assert message in response.text


def feed(game_id: str) -> list[dict]:
    events = load_shipped_events()
    game = events[events["game_id"] == game_id].sort_values(["period", "elapsed_s"])
    updates = []
    for row in game.itertuples(index=False):
        remaining = (row.period * 720) - row.elapsed_s
        updates.append(
            {
                "period": int(row.period),
                "clock": f"{remaining // 60}:{remaining % 60:02d}",
                "home": int(row.home),
                "away": int(row.away),
            }
        )
    last = updates[-1]
    updates.append({"period": 3, "clock": "12:00", "home": last["home"], "away": last["away"]})
    return updates


def test_a_real_game_through_the_feed_gives_one_forecast_and_one_outcome(
    server: dict, shipped_games: pd.DataFrame
) -> None:
    client = server["client"]
    updates = feed(GAME)
    for update in updates:
        response = client.post(f"/v1/games/{GAME}/score", json=update)
        assert response.status_code == 200, response.text
    for update in updates[::7]:  # the feed repeats itself: nothing changes
        assert client.post(f"/v1/games/{GAME}/score", json=update).status_code == 200
    state = client.get(f"/v1/games/{GAME}").json()
    truth = shipped_games.set_index("game_id").loc[GAME]
    assert state["outcome"] == truth["m_24"]
    assert state["margins"][:19] == [int(truth[f"m_{k}"]) for k in range(19)]
    assert server["log"].counts() == {"predictions": 1, "outcomes": 1}
    direct = client.post("/v1/predict", json={"margins": state["margins"][:19]}).json()
    assert direct["forecast"] == pytest.approx(state["forecast"]["forecast"])


def test_feed_rejects_contradictions_and_bad_clocks(server: dict) -> None:
    client = server["client"]
    assert (
        client.post(
            "/v1/games/x1/score", json={"period": 1, "clock": "5:00", "home": 10, "away": 8}
        ).status_code
        == 200
    )
    late = client.post(
        "/v1/games/x1/score", json={"period": 1, "clock": "4:00", "home": 6, "away": 8}
    )
    assert late.status_code == 409 and "never decreases" in late.text
    for bad in [
        {"period": 0, "clock": "5:00", "home": 1, "away": 1},
        {"period": 1, "clock": "13:00", "home": 1, "away": 1},
        {"period": 5, "clock": "7:00", "home": 1, "away": 1},
        {"period": 1, "clock": "5:00", "home": -1, "away": 1},
    ]:
        assert client.post("/v1/games/x1/score", json=bad).status_code == 422
    assert client.get("/v1/games/never").status_code == 404


def test_ab_arms_are_sticky_and_a_challenger_swap_needs_no_restart(
    server: dict, deployed: dict
) -> None:
    client, engine = server["client"], server["engine"]
    before = client.post("/v1/predict", json={"game_id": "s1", "margins": MARGINS}).json()
    assert before["model_version"] == deployed["v1"]
    server["routing"].write_text(
        json.dumps(
            {
                "production": deployed["v1"],
                "challenger": deployed["v2"],
                "challenger_share": 0.5,
                "salt": "exp-1",
            }
        )
    )
    engine.reload(force=True)  # the periodic reload, without waiting
    arms = {}
    for i in range(40):
        body = client.post("/v1/predict", json={"game_id": f"ab{i}", "margins": MARGINS}).json()
        arms[f"ab{i}"] = (body["arm"], body["model_version"])
        again = client.post("/v1/predict", json={"game_id": f"ab{i}", "margins": MARGINS}).json()
        assert again["arm"] == body["arm"]  # sticky per game
    assert {a for a, _ in arms.values()} == {"A", "B"}
    assert all(v == (deployed["v2"] if a == "B" else deployed["v1"]) for a, v in arms.values())
    logged = pd.read_sql_table("predictions", server["log"].engine)
    assert (logged["arm"] == "shadow").sum() == 40  # the other version scored every game


def test_fallbacks_never_500(server: dict, deployed: dict) -> None:
    client, engine = server["client"], server["engine"]
    engine.reload(force=True)
    model = engine.models[deployed["v1"]]
    lstm = model.components["lstm"]
    saved = lstm.network_
    try:
        lstm.network_ = None  # unreadable weights
        body = client.post("/v1/predict", json={"margins": MARGINS}).json()
        assert body["fallback"].startswith("components: without lstm")
        assert body["lower"] < body["forecast"] < body["upper"]
        for component in model.components.values():
            component.predict = None  # type: ignore[method-assign]
        body = client.post("/v1/predict", json={"margins": MARGINS}).json()
        assert body["fallback"].startswith("persistence") and body["forecast"] == MARGINS[-1]
    finally:
        lstm.network_ = saved
        for component in model.components.values():
            if "predict" in vars(component):
                del component.predict
    metrics = client.get("/metrics").text
    assert 'nba_halftime_fallbacks_total{kind="components"}' in metrics
    assert 'nba_halftime_fallbacks_total{kind="persistence"}' in metrics


def test_health_readiness_and_metrics(server: dict, deployed: dict) -> None:
    client = server["client"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["production"] == deployed["v1"] and ready["spooled"] == 0
    client.post("/v1/predict", json={"game_id": "m1", "margins": MARGINS})
    text = client.get("/metrics").text
    assert "nba_halftime_predictions_total" in text and "nba_halftime_request_seconds" in text
    assert "game_id" not in text and "m1" not in text
    assert client.get("/openapi.json").json()["paths"]["/v1/predict"]


def test_serve_without_a_production_version_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from nba_forecast.cli import app

    monkeypatch.setenv("NBA_FORECAST_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "nba-forecast bootstrap" in result.output and "--bootstrap" in result.output


@pytest.mark.slow
def test_real_server_over_http(tmp_path: Path) -> None:
    """`nba-forecast serve --bootstrap` as a process, on a free loopback port."""
    import contextlib
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NBA_FORECAST_HOME": str(tmp_path / "home")}
    command = [
        sys.executable,
        "-m",
        "nba_forecast.cli",
        "serve",
        "--bootstrap",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the server did not become ready")
        response = httpx.post(f"{url}/v1/predict", json={"game_id": "live-1", "margins": MARGINS})
        assert response.status_code == 200 and response.json()["arm"] == "A"
        assert "nba_halftime_predictions_total" in httpx.get(f"{url}/metrics").text
        # the feed adapter replays a real game against the running server
        from typer.testing import CliRunner

        from nba_forecast.cli import app

        replayed = CliRunner().invoke(app, ["feed", GAME, "--url", url])
        assert replayed.exit_code == 0, replayed.output
        assert "forecast at 6:00 Q2" in replayed.output and "halftime margin" in replayed.output
        missing = CliRunner().invoke(app, ["feed", "0000000000", "--url", url])
        assert missing.exit_code == 2 and "no scoring events" in missing.output
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_feed_fuzz_never_500(server: dict) -> None:
    """Random update streams (out of order, duplicated, contradictory, malformed)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = server["client"]
    update = st.fixed_dictionaries(
        {
            "period": st.integers(-1, 16),
            "clock": st.one_of(st.from_regex(r"\A[0-9]{1,2}:[0-9]{2}\Z"), st.text(max_size=6)),
            "home": st.integers(-5, 400),
            "away": st.integers(-5, 400),
        }
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(update, min_size=1, max_size=25), st.integers(0, 3))
    def run(updates: list[dict], game: int) -> None:
        for body in updates:
            response = client.post(f"/v1/games/fuzz-{game}/score", json=body)
            assert response.status_code in (200, 409, 422), response.text

    run()


def test_a_bad_routing_file_keeps_the_last_good_routing(server: dict, deployed: dict) -> None:
    client, engine = server["client"], server["engine"]
    engine.reload(force=True)
    for text in (
        "garbage: [",
        json.dumps({"production": deployed["v1"], "challenger": "f" * 16}),
    ):
        server["routing"].write_text(text)
        engine.reload(force=True)  # logged, not raised: the loaded versions keep serving
        assert client.get("/readyz").status_code == 200
        body = client.post("/v1/predict", json={"game_id": "r1", "margins": MARGINS})
        assert body.status_code == 200 and body.json()["model_version"] == deployed["v1"]


def test_a_routed_version_that_cannot_load_never_breaks_serving(
    server: dict, deployed: dict, tmp_path: Path
) -> None:
    """A challenger whose stored file was altered, and one whose files verify but do not
    load: the loaded versions keep serving, /readyz and a metric say why."""
    import shutil

    client, engine, registry = server["client"], server["engine"], deployed["registry"]
    engine.reload(force=True)
    corrupt_dir = shutil.copytree(deployed["root"] / "v2", tmp_path / "v3")
    (corrupt_dir / "note.txt").write_text("a distinct version")
    corrupt = registry.register(corrupt_dir).version
    key = f"versions/{corrupt}/files/note.txt"
    registry.store.put(key, b"a distinct versioN")
    unloadable_dir = tmp_path / "v4"
    unloadable_dir.mkdir()
    (unloadable_dir / "ensemble.json").write_text('{"not": "an ensemble"}')
    unloadable = registry.register(unloadable_dir).version
    for bad, why in ((corrupt, "corrupt"), (unloadable, "Error")):
        server["routing"].write_text(
            json.dumps({"production": deployed["v1"], "challenger": bad, "challenger_share": 0.5})
        )
        engine.reload(force=True)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and why in ready.json()["routing_error"], ready.json()
        assert "nba_halftime_routing_stale 1.0" in client.get("/metrics").text
        for game in range(6):
            body = client.post("/v1/predict", json={"game_id": f"b{game}", "margins": MARGINS})
            assert body.status_code == 200 and body.json()["model_version"] == deployed["v1"]
    server["routing"].write_text(json.dumps({"production": deployed["v1"]}))
    engine.reload(force=True)
    assert client.get("/readyz").json()["routing_error"] is None
    assert "nba_halftime_routing_stale 0.0" in client.get("/metrics").text


def test_the_mounted_routing_decides_what_serves_not_the_alias(
    server: dict, deployed: dict
) -> None:
    """Issue 12: the routing ConfigMap git carries names production; a running server
    follows a change of the mounted file without a restart, whatever the alias says."""
    client, engine, registry = server["client"], server["engine"], deployed["registry"]
    assert registry.resolve("production") == deployed["v1"]
    server["routing"].write_text(json.dumps({"production": deployed["v2"]}))
    engine.reload(force=True)
    body = client.post("/v1/predict", json={"game_id": "m1", "margins": MARGINS}).json()
    assert body["model_version"] == deployed["v2"]
    assert client.get("/readyz").json()["production"] == deployed["v2"]
    # the placeholder the overlays hold before the first rollout step: the alias serves
    server["routing"].write_text(json.dumps({"production": "bootstrap-pending"}))
    engine.reload(force=True)
    assert client.get("/readyz").json()["production"] == deployed["v1"]
