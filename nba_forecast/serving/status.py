"""What the status page shows, read: which versions serve with which shares, the last
lifecycle decisions (alias moves in the registry's promotion log, the A/B tests started and
how each ended), each version's accuracy over the most recent finished games, and the games
the live feed follows.

Nothing here is on the forecast path: the routing is the engine's copy in memory; the
registry, the prediction log and the live games are read in threads of their own (one per
source, never the forecasts' database slots: viewers queue there), each source within
``SOURCE_TIMEOUT_S``. A source that fails or does not answer in time is reported as
unavailable, with the reason, and the rest still is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np

from nba_forecast.data.events import period_length, period_start
from nba_forecast.lifecycle.promotion import FINISHED_PREFIX, ROLLOUT_KEY
from nba_forecast.lifecycle.rollout import Rollout
from nba_forecast.routing import Routing
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.serving.live import LiveGame
from nba_forecast.storage.live_games import LiveGameStore
from nba_forecast.storage.object_store import ObjectNotFound, ObjectStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry

SOURCES = ("registry", "prediction log", "live games")  # each read by one thread at a time
SOURCE_TIMEOUT_S = 3.0  # past this a source is shown as unavailable (statements: 2 s)
DECISIONS = 10  # the last lifecycle decisions shown
GAMES = 20  # the games updated last
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Served:
    version: str
    role: str  # production or challenger
    share: float  # of the games this version's forecast is served for
    made_by: str | None = None  # the lifecycle step that made it (from the registry)
    registered_at: str | None = None


@dataclass(frozen=True)
class Decision:
    at: str  # ISO time, UTC
    what: str
    versions: str
    why: str


@dataclass(frozen=True)
class Accuracy:
    model_version: str
    arm: str  # A or B (served), shadow (scored, not served)
    games: int
    mae: float
    coverage: float
    nominal: float  # the coverage the intervals are built for
    mean_width: float


@dataclass(frozen=True)
class FollowedGame:
    game_id: str
    teams: str
    score: str
    clock: str
    forecast: str
    halftime: str
    note: str
    updated_at: str


@dataclass(frozen=True)
class Status:
    generated_at: str
    serving: list[Served]
    serving_note: str | None  # why the routing is not the newest, or not loaded yet
    decisions: list[Decision]
    decisions_error: str | None
    window: int  # the accuracy window, in finished games
    accuracy: list[Accuracy]
    accuracy_error: str | None
    games: list[FollowedGame]
    games_error: str | None


@dataclass(frozen=True)
class RegistryView:
    provenance: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)


class StatusReader:
    """Builds a ``Status`` from the engine's routing and, off the forecast path, the
    registry, the prediction log and the live games."""

    def __init__(self, engine: ForecastEngine, games: LiveGameStore) -> None:
        self.engine = engine
        self.games = games
        # one thread per source: a stalled database never holds up the registry's read
        self.limiters = {source: anyio.CapacityLimiter(1) for source in SOURCES}

    async def read(self, window: int) -> Status:
        routing = self.engine.routing
        versions = _versions(routing)
        (
            (registry, decisions_error),
            (accuracy, accuracy_error),
            (games, games_error),
        ) = await asyncio.gather(
            self._bounded("registry", registry_view, self.engine.registry, versions),
            self._bounded("prediction log", accuracy_rows, self.games.log, window),
            self._bounded("live games", followed_games, self.games),
        )
        view = registry or RegistryView()
        return Status(
            generated_at=_iso(self.engine.clock()),
            serving=_serving(routing, view),
            serving_note=_serving_note(routing, self.engine.reload_error),
            decisions=view.decisions,
            decisions_error=decisions_error,
            window=window,
            accuracy=accuracy or [],
            accuracy_error=accuracy_error,
            games=games or [],
            games_error=games_error,
        )

    async def _bounded(
        self, source: str, function: Callable[..., Any], *args: Any
    ) -> tuple[Any, str | None]:
        """``function(*args)`` in a status thread: (result, None), or (None, why not)."""
        try:
            with anyio.fail_after(SOURCE_TIMEOUT_S):
                result = await anyio.to_thread.run_sync(
                    function, *args, limiter=self.limiters[source], abandon_on_cancel=True
                )
        except TimeoutError:
            # the thread finishes on its own: statements time out, the watchdog closes
            # stalled connections
            return None, f"{source} unavailable: no answer within {SOURCE_TIMEOUT_S:g} s"
        except Exception as error:
            return None, f"{source} unavailable: {_first_line(error)}"
        return result, None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first[:300]


def _iso(value: dt.datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="seconds")


# -- what serves ---------------------------------------------------------------------------
def _versions(routing: Routing | None) -> list[str]:
    if routing is None:
        return []
    return [v for v in (routing.production, routing.challenger) if v]


def _serving(routing: Routing | None, view: RegistryView) -> list[Served]:
    if routing is None:
        return []
    share = routing.challenger_share if routing.challenger else 0.0
    roles = [(routing.production, "production", 1.0 - share)]
    if routing.challenger:
        roles.append((routing.challenger, "challenger", share))
    served = []
    for version, role, value in roles:
        made_by, registered_at = view.provenance.get(version, (None, None))
        served.append(Served(version, role, value, made_by, registered_at))
    return served


def _serving_note(routing: Routing | None, reload_error: str | None) -> str | None:
    if routing is None:
        return "no routing loaded yet (the server is starting, or cannot load any version)"
    if reload_error:
        return f"the newest routing could not be loaded, the last good one serves: {reload_error}"
    return None


# -- decisions (the registry and the lifecycle state beside it) ------------------------------
def registry_view(registry: Registry, versions: list[str]) -> RegistryView:
    """Who made the served versions, and the last ``DECISIONS`` lifecycle decisions: alias
    moves (promotions, rollbacks, roll forwards, validated candidates) and A/B tests."""
    provenance = {}
    for version in versions:
        manifest = registry.manifest(version)
        provenance[version] = (manifest.made_by or None, manifest.created_at or None)
    decisions = [
        Decision(
            entry.at,
            f"{entry.alias} moved",
            f"{entry.from_version or '(none)'} \u2192 {entry.to_version}",
            entry.reason,
        )
        for entry in registry.recent_promotions(DECISIONS)
    ]
    decisions += [_test_decision(test) for test in ab_tests(registry.store)]
    # newest first; at one time (seconds), the later entry of the log first
    order = sorted(enumerate(decisions), key=lambda d: (parse_time(d[1].at), d[0]), reverse=True)
    return RegistryView(provenance, [decision for _, decision in order[:DECISIONS]])


def ab_tests(store: ObjectStore) -> list[Rollout]:
    """The running (or last) A/B test and every finished one (a test is decided rarely,
    about weekly: all are read)."""
    tests: dict[tuple[str, str], Rollout] = {}
    keys = [key for key in store.list(FINISHED_PREFIX) if key.endswith(".json")]
    for key in [*keys, ROLLOUT_KEY]:
        try:
            test = Rollout.from_json(store.get(key).decode())
        except ObjectNotFound:
            continue
        tests[(test.challenger, test.started_at)] = test  # current.json last: the newest state
    return list(tests.values())


def _test_decision(test: Rollout) -> Decision:
    versions = f"{test.challenger} vs {test.champion}"
    so_far = (
        f"{test.n} paired games, challenger {test.mean_difference:+.3f} points of absolute "
        f"error per game (negative: better) {test.why_undecided()}"
        if test.n
        else f"no paired games yet {test.why_undecided()}"
    )
    if test.decision is None:
        return Decision(
            test.started_at, "A/B test running", versions, f"at {test.share_b:.0%}: {so_far}"
        )
    if test.decision == "superseded":
        return Decision(test.started_at, "A/B test superseded", versions, test.reason)
    return Decision(test.started_at, f"A/B test: {test.decision}", versions, test.reason)


def parse_time(text: str) -> dt.datetime:
    """An ISO time as UTC-aware (naive: UTC); ``EARLIEST`` when it is not one."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return EARLIEST
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- accuracy and the games followed ----------------------------------------------------------
def accuracy_rows(log: PredictionLog, window: int) -> list[Accuracy]:
    frame = log.recent_metrics(window)
    return [
        Accuracy(
            str(row.model_version),
            str(row.arm),
            int(row.n),
            float(row.mae),
            float(row.coverage),
            float(row.nominal),
            float(row.mean_width),
        )
        for row in frame.itertuples(index=False)
    ]


def followed_games(store: LiveGameStore) -> list[FollowedGame]:
    return [_followed(game, updated) for game, updated in store.recent(GAMES)]


def _followed(game: LiveGame, updated: dt.datetime) -> FollowedGame:
    teams = f"{game.home_team or '?'} (home) vs {game.away_team or '?'}"
    score, clock = "0-0", "Q1 12:00"
    if game.points:
        period, elapsed, home, away = max(game.points, key=lambda p: (p[1], p[0], p[2] + p[3]))
        end = int((period_start(np.array([period])) + period_length(np.array([period])))[0])
        left = end - elapsed
        name = f"Q{period}" if period <= 4 else f"OT{period - 4}"
        score, clock = f"{home}-{away}", f"{name} {left // 60}:{left % 60:02d}"
    forecast = ""
    if game.forecast:
        f = game.forecast
        forecast = (
            f"{f['forecast']:+.1f} [{f['lower']:+.1f}, {f['upper']:+.1f}] "
            f"by {f['model_version']} (arm {f['arm']})"
        )
    halftime = "" if game.outcome is None else f"{game.outcome:+g}"
    return FollowedGame(
        game.game_id, teams, score, clock, forecast, halftime, game.note or "", _iso(updated)
    )
