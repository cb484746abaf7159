"""The HTTP API (FastAPI): forecasts, the live game feed, health and Prometheus metrics."""

from __future__ import annotations

import itertools
import math
import time
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field, field_validator

from nba_forecast.serving.engine import Forecast, ForecastEngine
from nba_forecast.serving.live import LiveGame, UpdateRejected

GAME_ID = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
CLOCK = r"^(1[0-2]|[0-9]):[0-5][0-9]$|^12:00$"


class PredictRequest(BaseModel):
    game_id: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    margins: list[float] = Field(
        ...,
        min_length=19,
        max_length=19,
        description="home-minus-away margin at the end of minutes 0..18",
    )
    home_team: str | None = Field(None, max_length=4)
    away_team: str | None = Field(None, max_length=4)
    back_to_back: float = Field(0.0, ge=-1, le=1, description="+1 home played yesterday, -1 away")

    @field_validator("margins")
    @classmethod
    def plausible(cls, margins: list[float]) -> list[float]:
        if any(not math.isfinite(m) or abs(m) > 80 or m != round(m) for m in margins):
            raise ValueError("margins must be whole numbers of points between -80 and 80")
        if margins[0] != 0:
            raise ValueError("m_0 must be 0 (tip-off)")
        if any(abs(b - a) > 20 for a, b in itertools.pairwise(margins)):
            raise ValueError("a margin cannot move more than 20 points in one minute")
        return margins


class ScoreUpdate(BaseModel):
    period: int = Field(..., ge=1, le=14)
    clock: str = Field(..., pattern=CLOCK, description="time left in the period, mm:ss")
    home: int = Field(..., ge=0, le=300)
    away: int = Field(..., ge=0, le=300)
    home_team: str | None = Field(None, max_length=4)
    away_team: str | None = Field(None, max_length=4)

    def remaining_s(self) -> int:
        minutes, seconds = self.clock.split(":")
        value = int(minutes) * 60 + int(seconds)
        if value > (720 if self.period <= 4 else 300):
            raise ValueError("clock beyond the length of the period")
        return value


class GameState(BaseModel):
    game_id: str
    elapsed_s: int
    margins: list[int]
    forecast: Forecast | None
    outcome: float | None


class ServerMetrics:
    """The server's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "nba_halftime_request_seconds", "request latency", ["endpoint"], registry=self.registry
        )
        self.served = Counter(
            "nba_halftime_predictions_total",
            "forecasts served",
            ["model_version", "arm"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "nba_halftime_fallbacks_total", "degraded forecasts", ["kind"], registry=self.registry
        )
        self.spool = Gauge(
            "nba_halftime_spool_depth", "records waiting for the database", registry=self.registry
        )
        self.info = Gauge(
            "nba_halftime_model_info",
            "served versions",
            ["model_version", "role"],
            registry=self.registry,
        )
        self.routing_stale = Gauge(
            "nba_halftime_routing_stale",
            "1 while the newest routing cannot be loaded and the last good one serves",
            registry=self.registry,
        )

    def respond(self, result: Forecast) -> Forecast:
        """Count a served forecast (by version and arm, and its fallback) and return it."""
        self.served.labels(result.model_version, result.arm).inc()
        if result.fallback:
            self.fallbacks.labels(result.fallback.split(":")[0]).inc()
        return result

    def exposition(self, engine: ForecastEngine) -> str:
        self.spool.set(engine.log.pending())
        self.routing_stale.set(int(engine.reload_error is not None))
        if engine.routing is not None:
            self.info.labels(engine.routing.production, "production").set(1)
            if engine.routing.challenger:
                self.info.labels(engine.routing.challenger, "challenger").set(1)
        return generate_latest(self.registry).decode()


def create_app(engine: ForecastEngine) -> FastAPI:
    app = FastAPI(
        title="nba-forecast",
        version="0.1.0",
        description="NBA halftime margin forecasts at 6:00 left in the 2nd quarter.",
    )
    metrics = ServerMetrics()

    @app.middleware("http")
    async def timed(request: Request, call_next):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response

    @app.post("/v1/predict", response_model=Forecast)
    def predict(request: PredictRequest) -> Forecast:
        """Forecast the halftime margin from m_0..m_18 (logged when a game id is given)."""
        result = engine.predict(
            request.game_id or "adhoc",
            request.margins,
            request.home_team,
            request.away_team,
            request.back_to_back,
            log=request.game_id is not None,
        )
        return metrics.respond(result)

    _game_routes(app, engine, metrics)
    _health_routes(app, engine, metrics)
    return app


def _game_routes(app: FastAPI, engine: ForecastEngine, metrics: ServerMetrics) -> None:
    """The live game feed: score updates in, the forecast and outcome when they are due."""
    games: dict[str, LiveGame] = {}

    @app.post("/v1/games/{game_id}/score", response_model=GameState)
    def score(game_id: GAME_ID, update: ScoreUpdate) -> GameState:
        """A score update from the live feed: forecasts automatically once the clock passes
        6:00 in Q2, records the outcome at halftime."""
        try:
            remaining = update.remaining_s()
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        game = games.setdefault(game_id, LiveGame(game_id, update.home_team, update.away_team))
        game.home_team = game.home_team or update.home_team
        game.away_team = game.away_team or update.away_team
        try:
            game.add(update.period, remaining, update.home, update.away)
        except UpdateRejected as error:
            raise HTTPException(409, str(error)) from None
        if game.forecast_due:
            result = engine.predict(
                game_id, [float(m) for m in game.margins(18)], game.home_team, game.away_team
            )
            game.forecast = metrics.respond(result)
        if game.halftime_reached and game.outcome is None and game.forecast is not None:
            game.outcome = float(game.margins(24)[24])
            engine.record_outcome(game_id, game.outcome)
        return _state(game)

    @app.get("/v1/games/{game_id}", response_model=GameState)
    def game_state(game_id: GAME_ID) -> GameState:
        if game_id not in games:
            raise HTTPException(404, f"no updates for game {game_id}")
        return _state(games[game_id])


def _state(game: LiveGame) -> GameState:
    forecast = game.forecast if isinstance(game.forecast, Forecast) else None
    minute = min(24, game.elapsed_s // 60)
    return GameState(
        game_id=game.game_id,
        elapsed_s=game.elapsed_s,
        margins=game.margins(minute),
        forecast=forecast,
        outcome=game.outcome,
    )


def _health_routes(app: FastAPI, engine: ForecastEngine, metrics: ServerMetrics) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, object]:
        try:
            routing = engine.reload()
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
    def prometheus() -> str:
        return metrics.exposition(engine)
