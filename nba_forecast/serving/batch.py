"""``POST /v1/predict/batch``: forecasts for up to ``MAX_BATCH_GAMES`` games in one request.

Each game is checked as a ``/v1/predict`` body is, and its teams must be ones the server
knows (an unknown team is refused, never forecast as an average team). Games are routed as
``/v1/predict`` routes them (by game id; without one as an ad hoc request) and scored one
version at a time, all rows at once. Nothing is logged unless the request says ``"log":
true``: then every game needs an id, and each is logged as ``/v1/predict`` logs it, once per
game, with its status in the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

# the app imports this module when it builds its routes, so these are complete by then
from nba_forecast.serving.app import PredictRequest, Services, StrictBody, _as_served
from nba_forecast.serving.engine import Forecast, ForecastEngine, inputs_digest
from nba_forecast.storage.prediction_log import InvalidRecord, same_forecast

MAX_BATCH_GAMES = 200  # ~150 bytes a game: well inside the server's body limit
ADHOC = "adhoc"  # the routing key of a game without an id, as /v1/predict uses
Status = Literal["not logged", "logged", "repeat", "conflict", "spooled"]


class BatchForecast(BaseModel):
    game_id: str | None
    forecast: float
    lower: float
    upper: float
    components: dict[str, float]
    model_version: str
    arm: str
    fallback: str | None = None
    status: Status = Field(
        "not logged",
        description="logged; repeat (already logged from the same inputs: that forecast); "
        "conflict (already logged from other inputs: that forecast stands); spooled (the "
        "database is away: logged later)",
    )


class BatchResponse(BaseModel):
    forecasts: list[BatchForecast]
    logged: int = Field(description="games whose forecast this request logged")


class BatchRequest(StrictBody):
    games: list[PredictRequest] = Field(..., min_length=1, max_length=MAX_BATCH_GAMES)
    log: bool = Field(False, description="log each game's forecast (every game needs an id)")


def unknown_teams(engine: ForecastEngine, games: list[PredictRequest]) -> str | None:
    """What is wrong with the games' team names, or None: a team the model has no strength
    for is refused, never forecast as an average team."""
    known = set(engine.team_strength)
    unknown: dict[str, list[int]] = {}
    for i, game in enumerate(games):
        for team in (game.home_team, game.away_team):
            if team is not None and team not in known:
                unknown.setdefault(team, []).append(i)
    if not unknown:
        return None
    if len(games) == 1:
        listed = ", ".join(repr(team) for team in unknown)
    else:
        listed = "; ".join(f"{team!r} in games {rows[:10]}" for team, rows in unknown.items())
    return f"unknown team(s): {listed}; known teams: {', '.join(sorted(known)) or 'none'}"


def check_games(engine: ForecastEngine, games: list[PredictRequest], log: bool) -> None:
    """422 for what the schema cannot see: unknown teams, a game twice, a missing id."""
    problem = unknown_teams(engine, games)
    if problem:
        raise HTTPException(422, problem)
    ids = [g.game_id for g in games if g.game_id is not None]
    twice = sorted(game for game, n in Counter(ids).items() if n > 1)
    if twice:
        raise HTTPException(422, f"game id(s) {twice[:10]} appear more than once")
    if log and len(ids) < len(games):
        missing = [i for i, g in enumerate(games) if g.game_id is None]
        raise HTTPException(
            422, f'"log": true needs a game_id for every game; games {missing[:10]} have none'
        )


def score_batch(engine: ForecastEngine, keys: list[str], X: np.ndarray) -> list[list[Forecast]]:
    """Each game's forecasts as ``engine.score`` gives them (its arm's, then the shadow's
    when an A/B test runs), each version scoring all its games at once."""
    routing = engine.routing or engine.reload()
    wanted: list[list[tuple[str, str]]] = []  # per game: (version, arm), served first
    for key in keys:
        arm = routing.arm(key)
        pairs = [(routing.version_for(arm), arm)]
        if routing.challenger:
            pairs.append((routing.production if arm == "B" else routing.challenger, "shadow"))
        wanted.append(pairs)
    by_version: dict[str, list[int]] = {}
    for row, pairs in enumerate(wanted):
        for version, _ in pairs:
            by_version.setdefault(version, []).append(row)
    scored: dict[tuple[int, str], Forecast] = {}
    for version, rows in by_version.items():
        scored.update(_score_version(engine, version, X, rows, keys, wanted))
    return [[scored[row, version] for version, _ in pairs] for row, pairs in enumerate(wanted)]


def _score_version(
    engine: ForecastEngine,
    version: str,
    X: np.ndarray,
    rows: list[int],
    keys: list[str],
    wanted: list[list[tuple[str, str]]],
) -> dict[tuple[int, str], Forecast]:
    arms = {row: dict(wanted[row])[version] for row in rows}
    start = time.perf_counter()
    try:
        details = engine.models[version].predict_details(X[rows])
    except Exception:  # a broken component: game by game, with the engine's fallbacks
        return {
            (row, version): next(
                f for f in engine.score(keys[row], X[row : row + 1]) if f.model_version == version
            )
            for row in rows
        }
    each_ms = (time.perf_counter() - start) * 1000 / len(rows)
    return {
        (row, version): Forecast(
            float(details.forecast[i]),
            float(details.lower[i]),
            float(details.upper[i]),
            {name: float(values[i]) for name, values in details.components.items()},
            [],
            version,
            arms[row],
            None,
            each_ms,
            float(details.scale[i]),
        )
        for i, row in enumerate(rows)
    }


def _answer(game_id: str | None, forecast: Forecast, status: Status) -> dict[str, Any]:
    return {
        "game_id": game_id,
        "forecast": forecast.forecast,
        "lower": forecast.lower,
        "upper": forecast.upper,
        "components": forecast.components,
        "model_version": forecast.model_version,
        "arm": forecast.arm,
        "fallback": forecast.fallback,
        "status": status,
    }


async def _log_one(
    services: Services, game_id: str, scored: list[Forecast], inputs: str
) -> tuple[Forecast, Status]:
    """Log one game as /v1/predict does; what it answers and the game's status."""
    engine, metrics = services.engine, services.metrics
    if game_id in services.recent:
        known, forecast = services.recent[game_id]
        return forecast, "repeat" if known == inputs else "conflict"
    records = engine.records(game_id, scored, inputs)
    try:
        logged = await services.writer.log_forecast(records)
    except (InvalidRecord, OSError) as error:
        raise HTTPException(503, f"the forecast could not be logged: {error}") from None
    if logged is None:
        return metrics.count_game(scored[0]), "spooled"
    if logged.inputs != inputs:
        return _as_served(logged), "conflict"
    if same_forecast(logged, records[0]):
        services.remember(game_id, inputs, scored[0])
        return metrics.count_game(scored[0]), "logged"
    served = _as_served(logged)
    services.remember(game_id, inputs, served)
    metrics.repeats.inc()
    return served, "repeat"


def batch_routes(app: FastAPI, services: Services, writes: list[Any]) -> None:
    engine = services.engine

    @app.post("/v1/predict/batch", response_model=BatchResponse, dependencies=writes)
    async def predict_batch(request: BatchRequest) -> dict[str, Any]:
        """Forecast up to 200 games. Nothing is logged unless ``"log": true`` (then each
        game once, as /v1/predict logs it; its ``status`` says what happened)."""
        games, log = request.games, request.log
        check_games(engine, games, log)
        X = np.vstack(
            [engine.row(g.margins, g.home_team, g.away_team, g.back_to_back) for g in games]
        )
        keys = [g.game_id or ADHOC for g in games]
        scored = score_batch(engine, keys, X)
        if not log:
            services.metrics.adhoc.inc(len(games))
            answers = [
                _answer(g.game_id, services.metrics.respond(s[0]), "not logged")
                for g, s in zip(games, scored, strict=True)
            ]
            return {"forecasts": answers, "logged": 0}
        results = await asyncio.gather(
            *(
                _log_one(services, key, s, inputs_digest(X[i : i + 1]))
                for i, (key, s) in enumerate(zip(keys, scored, strict=True))
            )
        )
        answers = [_answer(k, f, status) for k, (f, status) in zip(keys, results, strict=True)]
        logged = sum(status == "logged" for _, status in results)
        return {"forecasts": answers, "logged": logged}
