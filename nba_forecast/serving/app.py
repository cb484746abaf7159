"""The HTTP API (FastAPI): forecasts, the live game feed and its event stream, health and
Prometheus metrics, and the status page (``status_page``).

The request path does no I/O but logging: the model runs in the event loop (about 1 ms),
a forecast is logged by the group-commit writer (``log_writer``) and answered once durable,
and a live game's state lives in the prediction database (``storage.live_games``), so any
replica and any restart sees the same game. Endpoints that write require the bearer token
when one is configured. Errors are JSON with a specific message; the input is never echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from nba_forecast.data.schema import GAME_ID_PATTERN as ANY_GAME_ID
from nba_forecast.serving.basketball import MAX_SCORE, check_margin_path
from nba_forecast.serving.engine import Forecast, ForecastEngine, inputs_digest
from nba_forecast.serving.live import LiveGame, UpdateRejected
from nba_forecast.serving.log_writer import ForecastWriter
from nba_forecast.serving.metrics import ServerMetrics
from nba_forecast.serving.online_intervals import LoggedIntervals
from nba_forecast.serving.status_page import status_routes
from nba_forecast.serving.streams import GameWatch, StreamsFull
from nba_forecast.storage.live_games import LiveGameStore
from nba_forecast.storage.prediction_log import (
    InvalidRecord,
    OutcomeRecord,
    PredictionRecord,
    same_forecast,
)
from nba_forecast.storage.spool import database_unavailable

logger = logging.getLogger(__name__)

GAME_ID_PATTERN = f"^{ANY_GAME_ID}$"
GAME_ID = Annotated[str, Path(min_length=1, max_length=32, pattern=GAME_ID_PATTERN)]
TEAM = Field(None, min_length=2, max_length=4, pattern=r"^[A-Z]{2,4}$")
CLOCK = r"^(1[0-2]|[0-9]):[0-5][0-9]$"
MAX_BODY_BYTES = 64 * 1024  # a request is a few hundred bytes
DB_THREADS = 8  # database calls in flight per process (the pool holds these and the writer's)
SAVE_ATTEMPTS = 8  # concurrent updates of one game retried before 503
DB_WAIT_S = 1.0  # how long a request waits for a free database slot before 503
RECENT_GAMES = 20_000  # games this process forecast, for repeats while the log is down
RELOAD_EVERY_S = 5  # seconds


class StrictBody(BaseModel):
    # "5" and true are not numbers; NaN, Infinity and 1e400 are not finite
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


class PredictRequest(StrictBody):
    game_id: str | None = Field(None, pattern=GAME_ID_PATTERN)
    margins: list[float] = Field(
        ...,
        min_length=19,
        max_length=19,
        description="home-minus-away margin at the end of minutes 0..18, whole points",
    )
    home_team: str | None = TEAM
    away_team: str | None = TEAM
    back_to_back: float = Field(0.0, ge=-1, le=1, description="+1 home played yesterday, -1 away")

    @field_validator("margins")
    @classmethod
    def plausible(cls, margins: list[float]) -> list[float]:
        return [float(m) for m in check_margin_path(margins)]


class ScoreUpdate(StrictBody):
    period: int = Field(..., ge=1, le=14)
    clock: str = Field(..., max_length=5, pattern=CLOCK, description="time left, mm:ss")
    home: int = Field(..., ge=0, le=MAX_SCORE)
    away: int = Field(..., ge=0, le=MAX_SCORE)
    home_team: str | None = TEAM
    away_team: str | None = TEAM

    def remaining_s(self) -> int:
        minutes, seconds = self.clock.split(":")
        value = int(minutes) * 60 + int(seconds)
        if value > (720 if self.period <= 4 else 300):
            raise ValueError(f"clock {self.clock} is beyond the length of period {self.period}")
        return value


class GameState(BaseModel):
    game_id: str
    elapsed_s: int
    margins: list[int]
    forecast: Forecast | None
    outcome: float | None
    note: str | None = Field(None, description="why the game has no forecast or outcome")


class Services:
    """What the endpoints share: the engine, the log writer, the live games, metrics."""

    def __init__(
        self, engine: ForecastEngine, token: str | None, intervals: LoggedIntervals | None
    ) -> None:
        self.engine = engine
        self.token = token
        self.intervals = intervals
        self.metrics = ServerMetrics()
        self.writer = ForecastWriter(engine.log)
        self.games = LiveGameStore(engine.log.log)
        self.db_threads = anyio.CapacityLimiter(DB_THREADS)
        self.db_slots = asyncio.Semaphore(DB_THREADS)
        self.recent: OrderedDict[str, tuple[str, Forecast]] = OrderedDict()
        self.watch = GameWatch(self.games)
        self._stop = threading.Event()

    def remember(self, game_id: str, inputs: str, forecast: Forecast) -> None:
        self.recent[game_id] = (inputs, forecast)
        while len(self.recent) > RECENT_GAMES:
            self.recent.popitem(last=False)

    def reload_routing_in_background(self) -> None:
        """Routing and versions are re-read here, never on the request path; and, with
        ``intervals``, every version's interval follows the logged outcomes."""

        def loop() -> None:
            ticks = 0
            while not self._stop.wait(1.0):
                ticks += 1
                with contextlib.suppress(Exception):  # gauges: never worth a dead thread
                    self.metrics.refresh(self.engine)
                if ticks % RELOAD_EVERY_S:
                    continue
                with contextlib.suppress(Exception):  # reload keeps the last good routing
                    self.engine.reload()
                if self.intervals is not None:
                    try:
                        self.intervals.sync(self.engine)
                    except Exception as error:  # the database is away: next time
                        logger.warning("interval sync failed: %s", error)

        threading.Thread(target=loop, name="routing-reload", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.watch.stop()
        self.writer.close()


def create_app(
    engine: ForecastEngine, token: str | None = None, intervals: LoggedIntervals | None = None
) -> FastAPI:
    """The app on ``engine``. ``token``: the bearer token writes need. ``intervals``: adapt
    intervals from the logged outcomes (every replica alike) instead of in process."""
    services = Services(engine, token, intervals)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.reload_routing_in_background()
        watching = asyncio.create_task(services.watch.watch())
        _end_streams_on_exit_signals(services.watch)
        yield
        services.close()
        await watching

    app = FastAPI(
        title="nba-forecast",
        version="0.1.0",
        description="NBA halftime margin forecasts at 6:00 left in the 2nd quarter.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(BodyLimit)
    _error_handlers(app)

    app.add_middleware(Timed, metrics=services.metrics)

    _predict_routes(app, services)
    from nba_forecast.serving.batch import batch_routes  # it builds on this module's models

    batch_routes(app, services, WRITES)
    _game_routes(app, services)
    _health_routes(app, services)
    status_routes(app, engine, services.games)
    return app


def _end_streams_on_exit_signals(watch: GameWatch) -> None:
    """End the event streams as soon as the server is told to stop: uvicorn waits for open
    connections before it shuts the app down, so streams must not wait for that."""
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):  # not uvicorn's (a test client): leave it alone
            continue

        def handle(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            loop.call_soon_threadsafe(watch.stop)
            previous(signum, frame)

        with contextlib.suppress(ValueError):  # not the main thread (a test client)
            signal.signal(number, handle)


# -- errors and limits ---------------------------------------------------------------------
class Timed:
    """Request latency by route (a plain ASGI middleware: Starlette's decorator kind costs
    a task and a stream per request)."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


class BodyLimit:
    """413 for a body over ``MAX_BODY_BYTES``, declared or streamed, before it is read."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await _refuse(send, 400, "Content-Length is not a number of bytes")
            return
        if declared is not None and int(declared) > MAX_BODY_BYTES:
            await _refuse(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
            return
        # read the whole (small) body first: past the limit, 413 before the app sees it
        messages: list[MutableMapping[str, Any]] = []
        seen = 0
        while True:
            message: MutableMapping[str, Any] = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                await _refuse(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> MutableMapping[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # where and why, never the input: it may be huge, NaN, or not serialisable
        detail = [
            {
                "loc": [str(part)[:64] for part in e.get("loc", ())],
                "msg": str(e.get("msg", "invalid"))[:300],
                "type": str(e.get("type", "value_error")),
            }
            for e in error.errors()[:20]
        ]
        return JSONResponse({"detail": detail}, status_code=422)


BEARER = HTTPBearer(auto_error=False, description="NBA_FORECAST_API_TOKEN of the server")


def _authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> None:
    """The bearer token, on every endpoint that writes (when the server has one)."""
    token: str | None = request.app.state.services.token
    if token is None:
        return
    value = credentials.credentials if credentials else ""
    if not hmac.compare_digest(value.encode(), token.encode()):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


WRITES = [Depends(_authorized)]


# -- forecasts -----------------------------------------------------------------------------
def _predict_routes(app: FastAPI, services: Services) -> None:
    from nba_forecast.serving.batch import unknown_teams  # it builds on this module's models

    engine, metrics = services.engine, services.metrics

    @app.post("/v1/predict", response_model=Forecast, dependencies=WRITES)
    async def predict(request: PredictRequest) -> JSONResponse:
        """Forecast the halftime margin from m_0..m_18. With a game id the forecast is
        logged, once per game: a repeat of the same request returns the logged forecast, a
        different one for the same game is refused (409)."""
        # serialised here: the response model documents the schema; re-validating costs
        return JSONResponse(_body(await _predict(request)))

    async def _predict(request: PredictRequest) -> Forecast:
        problem = unknown_teams(engine, [request])
        if problem:
            raise HTTPException(422, problem)
        X = engine.row(request.margins, request.home_team, request.away_team, request.back_to_back)
        if request.game_id is None:
            scored = engine.score("adhoc", X)
            metrics.adhoc.inc()
            return metrics.respond(scored[0])
        game_id, inputs = request.game_id, inputs_digest(X)
        if game_id in services.recent:
            return _repeat(game_id, inputs, services.recent[game_id][0], services)
        scored = engine.score(game_id, X)
        records = engine.records(game_id, scored, inputs)
        try:
            logged = await services.writer.log_forecast(records)
        except (InvalidRecord, OSError) as error:
            raise HTTPException(503, f"the forecast could not be logged: {error}") from None
        if logged is None:  # spooled: the log will decide; nothing to remember yet
            return metrics.count_game(scored[0])
        if logged.inputs != inputs:
            raise _contradicts(game_id, logged)
        if same_forecast(logged, records[0]):
            services.remember(game_id, inputs, scored[0])
            return metrics.count_game(scored[0])
        served = _as_served(logged)
        services.remember(game_id, inputs, served)
        metrics.repeats.inc()
        return served


def _as_served(record: PredictionRecord) -> Forecast:
    return Forecast(
        record.forecast,
        record.lower,
        record.upper,
        dict(record.components),
        [],
        record.model_version,
        record.arm,
        None,
        record.latency_ms,
        1.0 if record.scale is None else record.scale,
    )


def _repeat(game_id: str, inputs: str, known: str, services: Services) -> Forecast:
    if known != inputs:
        raise HTTPException(
            409, f"game {game_id} was already forecast from different inputs; one per game"
        )
    services.metrics.repeats.inc()
    return services.recent[game_id][1]


def _contradicts(game_id: str, logged: PredictionRecord) -> HTTPException:
    return HTTPException(
        409,
        f"game {game_id} was already forecast at {logged.predicted_at.isoformat()} "
        f"({logged.model_version}) from different inputs; one forecast per game",
    )


# -- live games ----------------------------------------------------------------------------
def _game_routes(app: FastAPI, services: Services) -> None:
    @app.post("/v1/games/{game_id}/score", response_model=GameState, dependencies=WRITES)
    async def score(game_id: GAME_ID, update: ScoreUpdate) -> GameState:
        """A score update from the live feed. Forecasts once the clock passes 6:00 in Q2
        (for a game followed from its start) and logs the outcome at halftime; an update
        that cannot be true of the game so far is refused (409, with the reason)."""
        try:
            remaining = update.remaining_s()
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        game = await _in_db_thread(services, _apply_update, services, game_id, update, remaining)
        services.watch.changed(game_id)
        return _state(game)

    @app.get("/v1/games/{game_id}", response_model=GameState)
    async def game_state(game_id: GAME_ID) -> GameState:
        game, _ = await _in_db_thread(services, services.games.load, game_id)
        if game is None:
            raise HTTPException(404, f"no updates for game {game_id}")
        return _state(game)

    @app.get("/v1/games/{game_id}/events")
    async def game_events(game_id: GAME_ID) -> StreamingResponse:
        """Server-sent events for one game: ``forecast`` the moment it is made (6:00 Q2),
        ``outcome`` at halftime, ``note`` when the game will have neither; then the stream
        ends. A change made by another replica arrives within half a second; a comment
        every 15 s keeps the connection open in between."""
        try:
            stream = services.watch.open(game_id)
        except StreamsFull as error:
            raise HTTPException(503, str(error)) from None
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _in_db_thread(services: Services, function: Callable[..., Any], *args: Any) -> Any:
    """Run a database call in the bounded pool. 503 when no slot frees within
    ``DB_WAIT_S`` (every slot held: the database is stalled or overloaded), or when the
    database is unavailable."""
    try:
        await asyncio.wait_for(services.db_slots.acquire(), DB_WAIT_S)
    except TimeoutError:
        raise HTTPException(
            503,
            f"all {DB_THREADS} database connections of this server are busy (the prediction "
            "database is slow or not answering); retry",
            headers={"Retry-After": "2"},
        ) from None
    try:
        return await anyio.to_thread.run_sync(function, *args, limiter=services.db_threads)
    except UpdateRejected as error:
        raise HTTPException(409, str(error)) from None
    except InvalidRecord as error:
        raise HTTPException(409, str(error)) from None
    except Exception as error:
        if database_unavailable(error):
            raise HTTPException(
                503, "the prediction database is unavailable; retry", headers={"Retry-After": "2"}
            ) from None
        raise
    finally:
        services.db_slots.release()


def _apply_update(
    services: Services, game_id: str, update: ScoreUpdate, remaining: int
) -> LiveGame:
    """Apply one update to the shared game (optimistic: re-read and re-apply when another
    replica wrote first); forecast and outcome are logged in the same transaction."""
    engine, logged_before = services.engine, None
    for _ in range(SAVE_ATTEMPTS):
        game, revision = services.games.load(game_id)
        game = game or LiveGame(game_id, update.home_team, update.away_team)
        for side, team in (("home", update.home_team), ("away", update.away_team)):
            known = getattr(game, f"{side}_team")
            if team and known and team != known:
                raise UpdateRejected(f"game {game_id} has {side} team {known}, not {team}")
            setattr(game, f"{side}_team", known or team)
        changed = game.add(update.period, remaining, update.home, update.away)
        records: list[PredictionRecord] = []
        if game.forecast_due:
            game.note = game.forecast_blocked()
        if game.forecast_due and logged_before is not None:
            # /v1/predict forecast this game first: that forecast stands, and gets its outcome
            X = engine.row([float(m) for m in game.margins(18)], game.home_team, game.away_team)
            game.forecast = _body(_as_served(logged_before))
            game.scored = [
                (
                    logged_before.model_version,
                    logged_before.forecast,
                    1.0 if logged_before.scale is None else logged_before.scale,
                )
            ]
            game.forecast_inputs = logged_before.inputs
            if inputs_digest(X) != logged_before.inputs:
                game.note = (
                    f"forecast by /v1/predict at {logged_before.predicted_at.isoformat()} from "
                    "other inputs than this feed's; that forecast stands"
                )
        elif game.forecast_due:
            X = engine.row([float(m) for m in game.margins(18)], game.home_team, game.away_team)
            scored = engine.score(game_id, X)
            records = engine.records(game_id, scored, inputs_digest(X))
            game.forecast = _body(scored[0])
            game.scored = [(f.model_version, f.forecast, f.scale) for f in scored]
            game.forecast_inputs = records[0].inputs
        outcome = None
        if game.outcome_due:
            game.outcome = game.halftime_margin()
            outcome = OutcomeRecord(game_id, game.outcome, engine.clock())
        game.close_half_without_outcome()
        if not changed and revision and not records and outcome is None:
            return game
        saved = services.games.save(game, revision, records, outcome)
        if saved is False:
            continue
        if isinstance(saved, PredictionRecord) and not same_forecast(saved, records[0]):
            logged_before = saved  # nothing was written: adopt it and apply the update again
            continue
        if records:
            services.metrics.count_game(scored[0])
        if outcome is not None:
            engine.adapt(game.scored, outcome.actual)
        return game
    raise HTTPException(503, f"game {game_id} is being updated concurrently; retry")


def _body(forecast: Forecast) -> dict[str, Any]:
    return {
        "forecast": forecast.forecast,
        "lower": forecast.lower,
        "upper": forecast.upper,
        "components": forecast.components,
        "analogs": forecast.analogs,
        "model_version": forecast.model_version,
        "arm": forecast.arm,
        "fallback": forecast.fallback,
        "latency_ms": forecast.latency_ms,
    }


def _state(game: LiveGame) -> GameState:
    minute = min(24, game.elapsed_s // 60)
    return GameState(
        game_id=game.game_id,
        elapsed_s=game.elapsed_s,
        margins=game.margins(minute),
        forecast=Forecast(**game.forecast) if game.forecast else None,
        outcome=game.outcome,
        note=game.note,
    )


# -- health --------------------------------------------------------------------------------
def _health_routes(app: FastAPI, services: Services) -> None:
    engine, metrics = services.engine, services.metrics

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: answers without touching the database or the registry."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        try:
            routing = await anyio.to_thread.run_sync(engine.reload)
        except Exception as error:  # no production version, registry unreachable
            raise HTTPException(503, f"not ready: {error}") from None
        return {
            "status": "ready",
            "production": routing.production,
            "challenger": routing.challenger,
            "challenger_share": routing.challenger_share if routing.challenger else 0.0,
            "spooled": engine.log.pending(),
            # the newest routing could not be loaded: the last good one serves on
            "routing_error": engine.reload_error,
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        return metrics.exposition(engine)
