"""The status page (/status, and /v1/status as JSON): what serves with which shares, the last
lifecycle decisions, accuracy over the last finished games and the live games, on known data;
escaped hostile text; bad query parameters; a failing or stalled source shown as unavailable
while the rest renders; and the page in headless chromium from a real `nba-forecast serve`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from nba_forecast.lifecycle.promotion import FINISHED_PREFIX, ROLLOUT_KEY
from nba_forecast.lifecycle.rollout import Rollout
from nba_forecast.routing import Routing
from nba_forecast.serving.app import create_app
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.serving.live import LiveGame
from nba_forecast.storage.live_games import LiveGameStore
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord
from nba_forecast.storage.registry import Registry
from nba_forecast.storage.spool import SpoolingPredictionLog
from tests.e2e.test_replicas import AUTH, Replica
from tests.integration.test_serving import deployed  # noqa: F401 - the trained registry
from tests.plugins.servers import TcpProxy

HOSTILE_REASON = "validated <script>alert(1)</script>"
HOSTILE_TEAM = "<script>document.title='pwned'</script>"
HOSTILE_GAME = "0029900666"
LIVE_GAME = "0021400333"
T0 = dt.datetime(2026, 1, 10, 1, 0, tzinfo=dt.UTC)
NEWEST_FIRST = ["candidate moved", "production moved", "A/B test running"]

# (game, [(version key, arm, forecast, lower, upper)], actual): v1 serves g1..g3, v2 g4
GAMES = [
    ("0029900001", [("v1", "A", 10, 0, 20), ("v2", "shadow", 11, 1, 21)], 12),
    ("0029900002", [("v1", "A", 0, -10, 10), ("v2", "shadow", -2, -12, 8)], -4),
    ("0029900003", [("v1", "A", -5, -6, -4), ("v2", "shadow", -1, -11, 9)], 0),
    ("0029900004", [("v2", "B", 3, -7, 13), ("v1", "shadow", 1, -9, 11)], 3),
]
# per (version key, arm): games, MAE, coverage, mean width, from the numbers above
EXPECTED = {
    ("v1", "A"): (3, 11 / 3, 2 / 3, 14.0),
    ("v1", "shadow"): (1, 2.0, 1.0, 20.0),
    ("v2", "B"): (1, 0.0, 1.0, 20.0),
    ("v2", "shadow"): (3, 4 / 3, 1.0, 20.0),
}


def fill_log(log: PredictionLog, versions: dict[str, str]) -> None:
    """The four finished games above, one outcome per hour."""
    for hour, (game, scored, actual) in enumerate(GAMES):
        at = T0 + dt.timedelta(hours=hour)
        log.record_predictions(
            [
                PredictionRecord(game, at, versions[key], arm, forecast, lower, upper, alpha=0.1)
                for key, arm, forecast, lower, upper in scored
            ]
        )
        log.record_outcomes([OutcomeRecord(game, actual, at + dt.timedelta(minutes=30))])
    hostile = LiveGame(HOSTILE_GAME, home_team=HOSTILE_TEAM, away_team="<b>X</b>")
    LiveGameStore(log).save(hostile, 0)


@pytest.fixture(scope="module")
def site(deployed: dict) -> dict:  # noqa: F811
    """The deployed registry with decisions on record: production v1 (the fixture's), a
    validated candidate with a hostile reason, an A/B test of v2 rolled back, and one
    running at 10%; the routing that serves v1 and v2 at 90/10."""
    registry: Registry = deployed["registry"]
    v1, v2 = deployed["v1"], deployed["v2"]
    registry.promote("candidate", v2, reason=HOSTILE_REASON)
    now = dt.datetime.now(dt.UTC)
    started = [(now - dt.timedelta(days=days)).isoformat() for days in (9, 2)]
    earlier = Rollout(v1, v2, "exp-0", started_at=started[0], n=120)
    earlier.decision, earlier.reason = "rollback", "sequential test after 120 paired games"
    registry.store.put(f"{FINISHED_PREFIX}{v2}.json", earlier.to_json().encode())
    running = Rollout(v1, v2, "exp-1", started_at=started[1], n=57, sum_d=-5.7)
    registry.store.put(ROLLOUT_KEY, running.to_json().encode())
    routing = deployed["root"] / "routing.json"
    routing.write_text(Routing(v1, v2, 0.1, "exp-1").to_json())
    return {**deployed, "routing": routing}


def app_on(site: dict, log: PredictionLog, tmp_path: Path, registry: Registry | None = None):  # type: ignore[no-untyped-def]
    engine = ForecastEngine(
        site["registry"],
        SpoolingPredictionLog(log, tmp_path / "spool"),
        cache_dir=site["root"] / "cache",
        routing_file=site["routing"],
        team_strength=site["strength"],
    )
    engine.reload(force=True)
    if registry is not None:
        engine.registry = registry  # the versions are loaded; later reads fail
    return create_app(engine)


@pytest.fixture
def client(site: dict, tmp_path: Path) -> Iterator[TestClient]:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    fill_log(log, {"v1": site["v1"], "v2": site["v2"]})
    with TestClient(app_on(site, log, tmp_path)) as client:
        yield client


def check_content(text: str, site: dict) -> None:
    """What the page says about the known data (the page's text or its JSON)."""
    v1, v2 = site["v1"], site["v2"]
    assert v1 in text and v2 in text
    assert HOSTILE_REASON in text
    assert "A/B test running" in text and "57 paired games" in text
    assert "sequential test after 120 paired games" in text


def test_the_page_shows_shares_decisions_accuracy_and_games(client: TestClient, site: dict) -> None:
    update = {"period": 1, "clock": "11:30", "home": 2, "away": 0, "home_team": "TOR"}
    assert client.post(f"/v1/games/{LIVE_GAME}/score", json=update).status_code == 200
    update = {"period": 2, "clock": "7:05", "home": 30, "away": 33}
    assert client.post(f"/v1/games/{LIVE_GAME}/score", json=update).status_code == 200

    body = client.get("/v1/status").json()
    served = {s["version"]: (s["role"], s["share"]) for s in body["serving"]}
    assert served == {
        site["v1"]: ("production", pytest.approx(0.9)),
        site["v2"]: ("challenger", 0.1),
    }
    assert body["window"] == 200
    accuracy = {
        (key, a["arm"]): (a["games"], a["mae"], a["coverage"], a["mean_width"])
        for a in body["accuracy"]
        for key in ("v1", "v2")
        if a["model_version"] == site[key]
    }
    assert accuracy == {k: pytest.approx(v) for k, v in EXPECTED.items()}
    assert [a["nominal"] for a in body["accuracy"]] == [pytest.approx(0.9)] * 4
    games = {g["game_id"]: g for g in body["games"]}
    assert games[LIVE_GAME]["score"] == "30-33" and games[LIVE_GAME]["clock"] == "Q2 7:05"
    assert games[LIVE_GAME]["teams"] == "TOR (home) vs ?"
    whats = [d["what"] for d in body["decisions"]]
    # newest first: the two alias moves (now), the running test, the rolled-back one
    assert whats == [*NEWEST_FIRST, "A/B test: rollback"]
    assert body["decisions"][2]["why"].startswith("at 10%: 57 paired games, challenger -0.100")
    assert not any(body[k] for k in ("decisions_error", "accuracy_error", "games_error"))

    page = client.get("/status")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # no script runs
    check_content(html_text(page.text), site)
    assert "3.67" in page.text and "66.7% (nominal 90%)" in page.text and "14.0" in page.text


def html_text(page: str) -> str:
    import html

    return html.unescape(page)


def test_data_is_escaped_never_markup(client: TestClient) -> None:
    page = client.get("/status").text
    assert "<script" not in page.lower()  # the page has no script, and data adds none
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;X&lt;/b&gt;" in page and "<b>" not in page


def test_the_window_is_the_last_finished_games(client: TestClient, site: dict) -> None:
    body = client.get("/v1/status", params={"games": 1}).json()
    rows = {(a["model_version"], a["arm"]): a["games"] for a in body["accuracy"]}
    assert rows == {(site["v2"], "B"): 1, (site["v1"], "shadow"): 1}  # the last game only
    assert "over the last 1 finished games" in client.get("/status?games=1").text


@pytest.mark.parametrize("path", ["/status", "/v1/status"])
@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?game=5", 400, "unknown query parameter 'game'; /status takes only: games"),
        ("?games=5&x=%3Cscript%3E", 400, "unknown query parameter 'x'"),
        ("?games=0", 422, "greater than or equal to 1"),
        ("?games=5001", 422, "less than or equal to 5000"),
        ("?games=ten", 422, "valid integer"),
    ],
)
def test_bad_query_parameters_are_refused(
    client: TestClient, path: str, query: str, status: int, message: str
) -> None:
    response = client.get(path + query)
    assert response.status_code == status
    assert message.replace("/status", path) in response.text
    assert "<script>" not in response.text  # never echoed as markup


def test_a_failing_source_is_named_and_the_rest_still_renders(site: dict, tmp_path: Path) -> None:
    no_tables = PredictionLog(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    gone = Registry(FileStore(tmp_path / "gone"))
    with TestClient(app_on(site, no_tables, tmp_path, registry=gone)) as client:
        page = client.get("/status")
        body = client.get("/v1/status").json()
    assert page.status_code == 200
    assert body["accuracy_error"].startswith("prediction log unavailable: ")
    assert "no such table" in body["accuracy_error"]
    assert body["games_error"].startswith("live games unavailable: ")
    assert (
        body["decisions_error"]
        == f"registry unavailable: no version {site['v1']} in {gone.store.url}"
    )
    assert [s["version"] for s in body["serving"]] == [site["v1"], site["v2"]]  # from memory
    text = html_text(page.text)
    for error in (body["accuracy_error"], body["games_error"], body["decisions_error"]):
        assert error in text


@pytest.mark.postgres
def test_a_stalled_database_is_shown_as_unavailable_not_waited_for(
    site: dict, pg_schema_url: str, tmp_path: Path
) -> None:
    fill_log(PredictionLog(pg_schema_url).migrate(), {"v1": site["v1"], "v2": site["v2"]})
    url = make_url(pg_schema_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    log = PredictionLog(through, statement_timeout_s=2.0, pool_pre_ping=False)
    try:
        with TestClient(app_on(site, log, tmp_path)) as client:
            before = client.get("/v1/status").json()
            assert before["accuracy_error"] is None and len(before["accuracy"]) == 4
            proxy.stall()  # accepts, never answers
            body = client.get("/v1/status").json()
            assert body["accuracy_error"] == "prediction log unavailable: no answer within 3 s"
            assert body["games_error"] == "live games unavailable: no answer within 3 s"
            assert body["decisions_error"] is None and len(body["serving"]) == 2
            proxy.cut()  # down: connections refused
            page = client.get("/status")
            assert page.status_code == 200 and "prediction log unavailable" in page.text
            assert client.get("/healthz").status_code == 200
    finally:
        proxy.close()
        log.engine.dispose()


@pytest.mark.postgres
def test_the_window_query_agrees_on_postgresql(site: dict, pg_schema_url: str) -> None:
    log = PredictionLog(pg_schema_url).migrate()
    fill_log(log, {"v1": site["v1"], "v2": site["v2"]})
    frame = log.recent_metrics(200)
    found = {
        (key, row.arm): (row.n, row.mae, row.coverage, row.mean_width)
        for row in frame.itertuples()
        for key in ("v1", "v2")
        if row.model_version == site[key]
    }
    assert found == {k: pytest.approx(v) for k, v in EXPECTED.items()}
    assert frame["last_outcome_at"].max() == T0 + dt.timedelta(hours=3, minutes=30)
    log.engine.dispose()


def test_the_storage_reads_refuse_an_empty_window_and_read_only_the_last_entries(
    site: dict, tmp_path: Path
) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    with pytest.raises(ValueError, match="at least one game"):
        log.recent_metrics(0)
    assert log.recent_metrics(5).empty
    assert LiveGameStore(log).recent(5) == []
    history = site["registry"].history()
    assert site["registry"].recent_promotions(1) == history[-1:]
    assert site["registry"].recent_promotions(0) == []


# -- in a real browser, from a real server ----------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian chromium through Selenium (skipped without them; CI=true fails)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def served(site: dict, tmp_path: Path) -> Iterator[Replica]:
    """`nba-forecast serve` on the site's registry and routing, with the known games."""
    database = f"sqlite:///{tmp_path / 'predictions.db'}"
    fill_log(PredictionLog(database).migrate(), {"v1": site["v1"], "v2": site["v2"]})
    server = Replica(tmp_path / "home", site["root"] / "registry", database)
    server.env["NBA_FORECAST_ROUTING_FILE"] = str(site["routing"])
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.browser
def test_the_status_page_in_chromium(chromium: Any, served: Replica, site: dict) -> None:
    from selenium.webdriver.common.by import By

    for update in (
        {"period": 1, "clock": "11:30", "home": 2, "away": 0, "home_team": "TOR"},
        {"period": 2, "clock": "7:05", "home": 30, "away": 33},
    ):
        response = httpx.post(f"{served.url}/v1/games/{LIVE_GAME}/score", json=update, headers=AUTH)
        assert response.status_code == 200, response.text

    chromium.get(f"{served.url}/status")
    assert chromium.title == "nba-forecast status"  # no hostile script ran

    def rows(table: str) -> list[list[str]]:
        found = chromium.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in found]

    v1, v2 = site["v1"], site["v2"]
    serving = {row[0]: row[1:3] for row in rows("serving-table")}
    assert serving == {v1: ["production", "90%"], v2: ["challenger", "10%"]}
    decisions = rows("decisions-table")
    assert [row[1] for row in decisions] == [*NEWEST_FIRST, "A/B test: rollback"]
    assert decisions[0][3] == HOSTILE_REASON  # shown as text
    assert decisions[1][2] == f"(none) \u2192 {v1}" and decisions[1][3] == "test"
    assert decisions[2][2] == f"{v2} vs {v1}" and decisions[2][3].startswith("at 10%: 57 paired")
    accuracy = {(row[0], row[1]): row[2:] for row in rows("accuracy-table")}
    assert accuracy[(v1, "A")] == ["3", "3.67", "66.7% (nominal 90%)", "14.0"]
    assert accuracy[(v2, "B")] == ["1", "0.00", "100.0% (nominal 90%)", "20.0"]
    assert accuracy[(v2, "shadow (not served)")] == ["3", "1.33", "100.0% (nominal 90%)", "20.0"]
    games = {row[0]: row for row in rows("games-table")}
    assert games[LIVE_GAME][1:4] == ["TOR (home) vs ?", "30-33", "Q2 7:05"]
    assert games[HOSTILE_GAME][1] == f"{HOSTILE_TEAM} (home) vs <b>X</b>"
    assert not chromium.find_elements(By.CSS_SELECTOR, ".warn")  # every source answered

    heading = chromium.find_element(By.CSS_SELECTOR, "#accuracy h2").text
    assert heading == "Accuracy over the last 200 finished games (4 so far)"
    assert rows("serving-table")[0][3] == "not recorded"  # the fixture's versions say no step

    chromium.get(f"{served.url}/status?games=1")
    heading = chromium.find_element(By.CSS_SELECTOR, "#accuracy h2").text
    assert heading == "Accuracy over the last 1 finished games"
    chromium.get(f"{served.url}/status?gmaes=1")
    assert "unknown query parameter 'gmaes'" in chromium.find_element(By.TAG_NAME, "body").text
    assert json.loads(httpx.get(f"{served.url}/v1/status").text)["serving"][0]["version"] == v1
