"""The server against hostile input and its own faults (FastAPI's test client): non-finite
and huge numbers, strict types, oversized bodies, missing tokens, repeated and contradictory
requests, impossible feeds, a torn spool line; and live game state shared by two apps on
one database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nba_forecast.data.shipped import load_shipped_events
from nba_forecast.serving.app import MAX_BODY_BYTES, create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.serving.feed import score_updates
from nba_forecast.serving.online_intervals import LoggedIntervals
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.spool import SpoolingPredictionLog
from nba_forecast.storage.tables import outcomes, predictions
from tests.integration.test_serving import GAME, MARGINS, deployed  # noqa: F401

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_app(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
    db: Path,
    name: str = "a",
    intervals: bool = False,
) -> TestClient:
    """An app on the database ``db``; ``intervals``: adapted from the logged outcomes (as
    ``serve`` does) instead of in process."""
    log = PredictionLog(f"sqlite:///{db}").migrate()
    engine = ForecastEngine(
        deployed["registry"],
        SpoolingPredictionLog(log, tmp_path / f"spool-{name}"),
        cache_dir=deployed["root"] / "cache",
        team_strength=deployed["strength"],
        online_intervals=not intervals,
    )
    logged = LoggedIntervals(log, lag_s=0) if intervals else None
    client = TestClient(create_app(engine, token=TOKEN, intervals=logged), headers=AUTH)
    client.app_state = {"engine": engine, "intervals": logged}  # type: ignore[attr-defined]
    return client


@pytest.fixture
def client(deployed: dict, tmp_path: Path) -> TestClient:  # noqa: F811
    return make_app(deployed, tmp_path, tmp_path / "log.db")


def counts(db: Path) -> tuple[int, int]:
    log = PredictionLog(f"sqlite:///{db}")
    with log.engine.connect() as connection:
        served = connection.scalar(
            select(func.count()).select_from(predictions).where(predictions.c.arm != "shadow")
        )
        known = connection.scalar(select(func.count()).select_from(outcomes))
    log.engine.dispose()
    return int(served or 0), int(known or 0)


def raw(client: TestClient, path: str, text: str) -> tuple[int, str]:
    response = client.post(path, content=text, headers={"Content-Type": "application/json"})
    return response.status_code, response.text


@pytest.mark.parametrize("hostile", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" * 400])
def test_non_finite_and_huge_numbers_are_422_never_500(client: TestClient, hostile: str) -> None:
    margins = ", ".join(str(m) for m in MARGINS[:18])
    bodies = {
        "/v1/predict": [
            f'{{"game_id": "h1", "margins": [{margins}, {hostile}]}}',
            f'{{"margins": [{margins}, 10], "back_to_back": {hostile}}}',
        ],
        "/v1/games/h2/score": [
            f'{{"period": 1, "clock": "11:00", "home": {hostile}, "away": 0}}',
            f'{{"period": {hostile}, "clock": "11:00", "home": 2, "away": 0}}',
        ],
    }
    for path, texts in bodies.items():
        for text in texts:
            status, body = raw(client, path, text)
            assert status == 422, (path, text, body)
            assert hostile not in body  # the input is never echoed
            assert json.loads(body)["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"margins": [*MARGINS[:18], "5"]},
        {"margins": [*MARGINS[:18], True]},
        {"margins": [i * 80 // 18 for i in range(19)]},  # a ramp to +80
        {"margins": [*MARGINS[:18], 1e19]},  # beyond any integer type
        {"margins": [*MARGINS[:18], 9223372036854775808]},
        {"margins": [*MARGINS[:18], -1e300]},
        {"margins": MARGINS, "home_team": "toronto"},
        {"margins": MARGINS, "surprise": 1},
    ],
)
def test_predict_takes_strict_types_and_plausible_paths(client: TestClient, body: dict) -> None:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text


def test_bodies_are_bounded_and_never_echoed(client: TestClient) -> None:
    huge = {"game_id": "x" * (MAX_BODY_BYTES + 10), "margins": MARGINS}
    response = client.post("/v1/predict", json=huge)
    assert response.status_code == 413 and "bytes" in response.json()["detail"]
    long_id = {"game_id": "!" * (MAX_BODY_BYTES // 2), "margins": MARGINS}
    response = client.post("/v1/predict", json=long_id)
    assert response.status_code == 422 and len(response.content) < 2000
    # a chunked body (no Content-Length) is bounded while it streams
    chunks = (b"x" * 8192 for _ in range(20))
    response = client.post("/v1/predict", content=chunks)
    assert response.status_code == 413


def test_endpoints_that_write_need_the_token(client: TestClient) -> None:
    anonymous = {"Authorization": ""}
    for path, body in (
        ("/v1/predict", {"margins": MARGINS}),
        ("/v1/games/t1/score", {"period": 1, "clock": "11:00", "home": 2, "away": 0}),
    ):
        assert client.post(path, json=body, headers=anonymous).status_code == 401
        wrong = {"Authorization": "Bearer wrong-token"}
        response = client.post(path, json=body, headers=wrong)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert client.post(path, json=body).status_code == 200
    for path in ("/healthz", "/metrics", "/v1/games/t1"):
        assert client.get(path, headers=anonymous).status_code == 200, path


def test_a_repeated_game_gets_its_logged_forecast_or_409_and_counts_once(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.db"
    first, second = make_app(deployed, tmp_path, db, "a"), make_app(deployed, tmp_path, db, "b")
    body = {"game_id": "r1", "margins": MARGINS, "home_team": "TOR", "away_team": "NYK"}
    served = first.post("/v1/predict", json=body).json()
    again = first.post("/v1/predict", json=body).json()
    # another replica (no memory of the game) answers from the log
    elsewhere = second.post("/v1/predict", json=body).json()
    for repeat in (again, elsewhere):
        assert (repeat["forecast"], repeat["lower"], repeat["upper"]) == (
            served["forecast"],
            served["lower"],
            served["upper"],
        )
    changed = {**body, "margins": [*MARGINS[:18], 11]}
    for app in (first, second):
        response = app.post("/v1/predict", json=changed)
        assert response.status_code == 409 and "different inputs" in response.text
    assert counts(db) == (1, 0)
    metrics = first.get("/metrics").text
    assert 'nba_halftime_predictions_total{arm="A",model_version="' in metrics
    assert "nba_halftime_predictions_total{" in metrics and "} 1.0" in metrics
    assert "nba_halftime_repeated_requests_total 1.0" in metrics


@pytest.mark.parametrize(
    ("updates", "note"),
    [
        ([(3, "11:30", 52, 50), (3, "11:00", 54, 50)], "after 6:00 of Q2"),  # first seen in Q3
        ([(2, "0:00", 50, 48), (3, "12:00", 50, 48)], "after 6:00 of Q2"),  # first at Q2 0:00
        ([(2, "5:59", 40, 38), (3, "12:00", 52, 50)], "after 6:00 of Q2"),
    ],
)
def test_a_game_first_seen_late_gets_no_forecast_and_no_outcome(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
    updates: list,
    note: str,
) -> None:
    db = tmp_path / "log.db"
    client = make_app(deployed, tmp_path, db)
    for period, clock, home, away in updates:
        response = client.post(
            "/v1/games/late/score",
            json={"period": period, "clock": clock, "home": home, "away": away},
        )
        assert response.status_code == 200, response.text
    state = response.json()
    assert state["forecast"] is None and state["outcome"] is None
    assert note in state["note"]
    assert counts(db) == (0, 0)


def test_impossible_updates_are_409_and_the_halftime_score_is_final(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.db"
    client = make_app(deployed, tmp_path, db)
    events = load_shipped_events()
    updates = score_updates(events[events["game_id"] == GAME], GAME)
    post = lambda update: client.post(f"/v1/games/{GAME}/score", json=update)  # noqa: E731
    assert post({"period": 2, "clock": "5:59", "home": 300, "away": 0}).status_code == 422
    impossible = post({"period": 2, "clock": "5:59", "home": 150, "away": 0})
    assert impossible.status_code == 409 and "cannot score 150 points" in impossible.text
    for update in updates:
        assert post(update).status_code == 200
    state = client.get(f"/v1/games/{GAME}").json()
    assert state["forecast"] is not None and state["outcome"] is not None
    halftime = updates[-1]
    other = {**halftime, "home": halftime["home"] + 2}
    response = post(other)
    assert response.status_code == 409 and "first half is over" in response.text
    assert client.get(f"/v1/games/{GAME}").json() == state
    assert counts(db) == (1, 1)


def test_two_apps_on_one_database_share_each_game(deployed: dict, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "log.db"
    apps = [make_app(deployed, tmp_path, db, name) for name in "ab"]
    events = load_shipped_events()
    for number, update in enumerate(score_updates(events[events["game_id"] == GAME], GAME)):
        response = apps[number % 2].post(f"/v1/games/{GAME}/score", json=update)
        assert response.status_code == 200, response.text
    views = [app.get(f"/v1/games/{GAME}").json() for app in apps]
    assert views[0] == views[1] and views[0]["forecast"] and views[0]["outcome"] is not None
    log = PredictionLog(f"sqlite:///{db}")
    logged = log.joined(*_window())
    log.engine.dispose()
    served = logged[logged["arm"] != "shadow"]
    assert len(served) == 1 and served["forecast"].iloc[0] == views[0]["forecast"]["forecast"]
    assert served["actual"].iloc[0] == views[0]["outcome"]


def _window():  # type: ignore[no-untyped-def]
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)


def test_a_torn_spool_line_never_blocks_requests(deployed: dict, tmp_path: Path) -> None:  # noqa: F811
    spool = tmp_path / "spool-a"
    spool.write_bytes(b'{"kind": "prediction", "record": {"game_id": "torn')  # a full disk
    client = make_app(deployed, tmp_path, tmp_path / "log.db")  # restarted on that spool
    response = client.post("/v1/predict", json={"game_id": "after-torn", "margins": MARGINS})
    assert response.status_code == 200, response.text
    for _ in range(50):  # the writer replays the spool once it is idle
        metrics = client.get("/metrics").text
        if all(f"nba_halftime_spool_{m}" in metrics for m in ("torn_lines 1.0", "depth 0.0")):
            break
        time.sleep(0.1)
    assert "nba_halftime_spool_torn_lines 1.0" in metrics
    assert "nba_halftime_spool_depth 0.0" in metrics
    assert Path(f"{spool}.torn").read_bytes().startswith(b'{"kind"')
    assert counts(tmp_path / "log.db") == (1, 0)


def test_replicas_adapt_their_intervals_alike_from_the_logged_outcomes(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "log.db"
    apps = [make_app(deployed, tmp_path, db, name, intervals=True) for name in "ab"]
    events = load_shipped_events()
    games = events["game_id"].drop_duplicates().iloc[:6].tolist()
    for number, game_id in enumerate(games):
        for step, update in enumerate(score_updates(events[events["game_id"] == game_id], game_id)):
            # each replica records some outcomes; neither sees them all
            response = apps[(number + step) % 2].post(f"/v1/games/{game_id}/score", json=update)
            assert response.status_code == 200, response.text
    states = []
    for app in apps:
        engine = app.app_state["engine"]  # type: ignore[attr-defined]
        assert app.app_state["intervals"].sync(engine) == len(games)  # type: ignore[attr-defined]
        (model,) = engine.models.values()
        states.append((model.conformal_.alpha_t_, model.conformal_.scores_.tolist()))
    assert states[0] == states[1]
    assert states[0][0] != 0.05  # the outcomes moved the level
    body = {"margins": MARGINS}
    answers = [app.post("/v1/predict", json=body).json() for app in apps]
    intervals = {(a["lower"], a["upper"]) for a in answers}
    assert len(intervals) == 1  # both replicas serve the same interval
    # a restarted replica rebuilds the same interval from the log
    fresh = make_app(deployed, tmp_path, db, "c", intervals=True)
    fresh_engine = fresh.app_state["engine"]  # type: ignore[attr-defined]
    fresh_engine.reload(force=True)
    fresh.app_state["intervals"].sync(fresh_engine)  # type: ignore[attr-defined]
    (model,) = fresh_engine.models.values()
    assert model.conformal_.alpha_t_ == states[0][0]


def test_a_feed_adopts_the_forecast_predict_made_for_its_game(
    deployed: dict,  # noqa: F811
    tmp_path: Path,
) -> None:
    """/v1/predict and the live feed on one game: one forecast, counted once, and the
    outcome logged for it, whether or not the inputs agree."""
    db = tmp_path / "log.db"
    client = make_app(deployed, tmp_path, db)
    events = load_shipped_events()
    updates = score_updates(events[events["game_id"] == GAME], GAME)
    first = client.post("/v1/predict", json={"game_id": GAME, "margins": MARGINS})
    assert first.status_code == 200
    for update in updates:
        assert client.post(f"/v1/games/{GAME}/score", json=update).status_code == 200
    state = client.get(f"/v1/games/{GAME}").json()
    assert state["forecast"]["forecast"] == first.json()["forecast"]
    assert state["outcome"] is not None and "forecast by /v1/predict" in state["note"]
    assert counts(db) == (1, 1)
    metrics = client.get("/metrics").text
    served = [
        line for line in metrics.splitlines() if line.startswith("nba_halftime_predictions_total{")
    ]
    assert served and served[0].endswith(" 1.0")


def test_a_game_keeps_its_teams(client: TestClient) -> None:
    update = {
        "period": 1,
        "clock": "11:00",
        "home": 2,
        "away": 0,
        "home_team": "TOR",
        "away_team": "NYK",
    }
    assert client.post("/v1/games/teams/score", json=update).status_code == 200
    changed = {**update, "clock": "10:00", "home": 4, "home_team": "BOS"}
    response = client.post("/v1/games/teams/score", json=changed)
    assert response.status_code == 409 and "home team TOR, not BOS" in response.text


def test_a_content_length_that_is_not_a_number_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/predict",
        content=b"{}",
        headers={"Content-Length": "ten", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and "Content-Length" in response.text


def test_the_schema_names_the_bearer_token(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/predict"]["post"]["security"]
