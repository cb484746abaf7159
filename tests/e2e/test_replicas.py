"""The deployed shape of the server, as processes: two replicas (`nba-forecast serve`) on one
PostgreSQL, a live feed alternating between them, one replica restarted mid-game, an event
stream on one replica seeing what the other forecast; and a database that stops answering.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import text

from nba_forecast.data.shipped import load_shipped_events, load_shipped_games
from nba_forecast.serving.feed import score_updates
from nba_forecast.storage.prediction_log import PredictionLog
from tests.integration.test_serving import MARGINS, deployed  # noqa: F401
from tests.plugins.servers import TcpProxy

pytestmark = pytest.mark.postgres
TOKEN = "replica-test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One `nba-forecast serve` process; stopped (SIGTERM, then SIGKILL) by ``stop``."""

    def __init__(self, home: Path, registry: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "NBA_FORECAST_HOME": str(home),
            "NBA_FORECAST_REGISTRY_URL": registry.as_uri(),
            "NBA_FORECAST_DATABASE_URL": database_url,
            "NBA_FORECAST_API_TOKEN": TOKEN,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        command = [sys.executable, "-m", "nba_forecast.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                pytest.fail(f"the server exited: {output[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        pytest.fail("the server did not become ready")

    def stop(self) -> str:
        """SIGTERM (SIGKILL if it does not exit); returns what the server printed."""
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        return self.process.stdout.read().decode() if self.process.stdout else ""


@pytest.fixture
def replicas(deployed: dict, pg_schema_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    PredictionLog(pg_schema_url).migrate().engine.dispose()
    registry = deployed["root"] / "registry"
    started = [Replica(tmp_path / f"r{n}", registry, pg_schema_url) for n in range(2)]
    try:
        yield [replica.start() for replica in started]
    finally:
        for replica in started:
            replica.stop()


def listen(url: str, game_id: str, events: list[tuple[str, dict, float]]) -> threading.Thread:
    """A real SSE client on ``url``'s event stream of one game, in a thread."""

    def run() -> None:
        with httpx.stream("GET", f"{url}/v1/games/{game_id}/events", timeout=120) as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line.removeprefix("data: ")), time.time()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_two_replicas_and_a_restart_log_one_forecast_and_one_outcome_per_game(
    replicas: list[Replica], pg_schema_url: str
) -> None:
    events = load_shipped_events()
    games = load_shipped_games().set_index("game_id")
    chosen = [str(g) for g in games[games["season"] == 2014].index[:4]]
    feeds = {g: score_updates(events[events["game_id"] == g], g) for g in chosen}
    heard: list[tuple[str, dict, float]] = []
    stream = listen(replicas[0].url, chosen[0], heard)
    clients = [httpx.Client(base_url=r.url, headers=AUTH, timeout=30) for r in replicas]
    halftime_posted_at: dict[str, float] = {}
    longest = max(len(f) for f in feeds.values())
    restart_at = longest // 2
    for step in range(longest):
        if step == restart_at:
            replicas[1].stop()  # a restart mid-game: its updates go to the other replica
        if step == restart_at + 5:
            replicas[1].start()
            clients[1] = httpx.Client(base_url=replicas[1].url, headers=AUTH, timeout=30)
        down = restart_at <= step < restart_at + 5
        for number, (game_id, updates) in enumerate(feeds.items()):
            if step >= len(updates):
                continue
            replica = 0 if down else (step + number) % 2
            response = clients[replica].post(f"/v1/games/{game_id}/score", json=updates[step])
            assert response.status_code == 200, response.text
            if step == len(updates) - 1:
                halftime_posted_at[game_id] = time.time()
    views = [[c.get(f"/v1/games/{g}").json() for g in chosen] for c in clients]
    assert views[0] == views[1]  # every replica sees each game the same
    stream.join(timeout=30)
    log = PredictionLog(pg_schema_url)
    now = dt.datetime.now(dt.UTC)
    logged = log.joined(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1))
    log.engine.dispose()
    served = logged[logged["arm"] != "shadow"].set_index("game_id")
    assert sorted(served.index) == sorted(chosen)  # one forecast and one outcome per game
    for view in views[0]:
        game_id = view["game_id"]
        assert served.loc[game_id, "forecast"] == view["forecast"]["forecast"]
        assert served.loc[game_id, "lower"] == view["forecast"]["lower"]
        assert served.loc[game_id, "actual"] == view["outcome"] == games.loc[game_id, "m_24"]
    # the stream on replica 0 delivered the forecast (wherever it was made) and the outcome
    kinds = [kind for kind, _, _ in heard]
    assert kinds[:2] == ["forecast", "outcome"], kinds
    forecast = heard[0][1]
    assert forecast["forecast"] == views[0][0]["forecast"]["forecast"]
    # pushed while the first half was still being played, not found afterwards
    assert heard[0][2] < halftime_posted_at[chosen[0]]


def test_a_stalled_database_means_spooled_writes_and_fast_answers(
    deployed: dict,  # noqa: F811
    pg_schema_url: str,
    tmp_path: Path,
) -> None:
    PredictionLog(pg_schema_url).migrate().engine.dispose()
    parsed = urlparse(pg_schema_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432).start()
    through = pg_schema_url.replace(f":{parsed.port or 5432}/", f":{proxy.port}/", 1)
    replica = Replica(tmp_path / "r", deployed["root"] / "registry", through)
    try:
        replica.start()
        client = httpx.Client(base_url=replica.url, headers=AUTH, timeout=30)
        assert client.post("/v1/predict", json={"game_id": "s0", "margins": MARGINS}).is_success
        proxy.stall()  # connections stay open; nothing comes back
        # every request is answered (a hang fails the client's timeout), from the spool
        quick = httpx.Client(base_url=replica.url, headers=AUTH, timeout=5)
        for number in range(1, 21):
            body = {"game_id": f"s{number}", "margins": MARGINS}
            assert quick.post("/v1/predict", json=body).status_code == 200
        assert quick.get("/readyz").json()["spooled"] >= 20
        # 45 requests at once, forecasts and live updates (which need the shared game
        # state: a clear 503, not a hang); health, metrics and readiness answer meanwhile
        update = {"period": 1, "clock": "11:00", "home": 2, "away": 0}

        def post(number: int) -> int:
            if number % 3:
                body = {"game_id": f"c{number}", "margins": MARGINS}
                return client.post("/v1/predict", json=body).status_code
            return client.post(f"/v1/games/stalled-{number}/score", json=update).status_code

        with ThreadPoolExecutor(45) as pool:
            answers = pool.map(post, range(45))
            for path in ("/healthz", "/metrics", "/readyz"):
                assert quick.get(path).status_code == 200, path
            statuses = list(answers)
        assert statuses == [200 if number % 3 else 503 for number in range(45)]
        assert "nba_halftime_spool_depth" in client.get("/metrics").text
        proxy.resume()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the next write replays the spool
            client.post(
                "/v1/predict", json={"game_id": f"after-{time.time_ns()}", "margins": MARGINS}
            )
            if client.get("/readyz").json()["spooled"] == 0:
                break
            time.sleep(1)
        assert client.get("/readyz").json()["spooled"] == 0
    finally:
        replica.stop()
        proxy.close()
    log = PredictionLog(pg_schema_url)
    with log.engine.connect() as connection:
        stored = set(connection.scalars(text("SELECT game_id FROM predictions")))
    log.engine.dispose()
    spooled = {f"s{n}" for n in range(21)} | {f"c{n}" for n in range(45) if n % 3}
    assert spooled <= stored  # nothing spooled was lost


def test_many_feeds_at_once_streams_and_a_prompt_shutdown(replicas: list[Replica]) -> None:
    """20 games fed at once to one replica: no update is turned away while the database
    keeps up; an event stream opens at once and does not hold up a shutdown."""
    events = load_shipped_events()
    games = events["game_id"].drop_duplicates().iloc[:20].tolist()
    feeds = {g: score_updates(events[events["game_id"] == g], g) for g in games}
    url = replicas[0].url
    opened: list[str] = []

    def stream_unknown_game() -> None:
        # the shutdown cuts the stream: that is the point
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", f"{url}/v1/games/never-played/events", timeout=60) as response,
        ):
            for line in response.iter_lines():
                opened.append(line)

    listener = threading.Thread(target=stream_unknown_game, daemon=True)
    listener.start()

    def feed(game_id: str) -> list[int]:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            return [
                client.post(f"/v1/games/{game_id}/score", json=u).status_code
                for u in feeds[game_id]
            ]

    with ThreadPoolExecutor(20) as pool:
        statuses = [s for result in pool.map(feed, games) for s in result]
    assert statuses and set(statuses) == {200}
    assert opened and opened[0] == ": stream open"
    output = replicas[0].stop()  # SIGTERM with the stream still open
    listener.join(timeout=15)
    assert not listener.is_alive()
    # the stream ended on the signal; uvicorn did not have to cancel it
    assert "graceful shutdown exceeded" not in output, output[-2000:]


def test_a_replica_starts_while_its_database_is_down(deployed: dict, tmp_path: Path) -> None:  # noqa: F811
    closed = free_port()  # nothing listens here
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/test"
    replica = Replica(tmp_path / "r", deployed["root"] / "registry", url)
    try:
        replica.start()
        client = httpx.Client(base_url=replica.url, headers=AUTH, timeout=30)
        response = client.post("/v1/predict", json={"game_id": "down-1", "margins": MARGINS})
        assert response.status_code == 200
        assert client.get("/readyz").json()["spooled"] == 1
    finally:
        replica.stop()
