"""The main job: replay a season game by game as production traffic, frozen or continuous.

The replay is only a simulated clock above the deployed parts. Both modes register one
trained model as production, then walk the season day by day: at 09:00 the lifecycle steps
that are due (``lifecycle.cadence``) run through ``lifecycle.run.run_step`` with the same
policy as the KFP pipelines (continuous mode only); at 19:00 every game of the day is
forecast by the serving ``ForecastEngine`` (its A/B arms, shadow scoring and logging; the
routing read from the GitOps repository the steps commit to); at 19:20 the halftime
outcomes reach the engine, which adapts the served intervals online (continuous only).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nba_forecast.data.splits import order_dates
from nba_forecast.lifecycle.bootstrap import bootstrap
from nba_forecast.lifecycle.cadence import due_steps
from nba_forecast.lifecycle.context import Context, GameSource, StepResult
from nba_forecast.lifecycle.gitops import GitOpsTarget, ensure_repo
from nba_forecast.lifecycle.policy import Policy, Step
from nba_forecast.lifecycle.run import run_step
from nba_forecast.lifecycle.training import TrainingWindow, train_ensemble, with_features
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry

logger = logging.getLogger(__name__)
# the clock ticks twice a day: the morning runs the daily, weekly and monthly steps, the
# evening (after the outcomes) the hourly ones again, as a cluster's hourly runs would
MORNING, GAMES_AT, OUTCOMES_AT, EVENING = (dt.time(9), dt.time(19), dt.time(19, 20), dt.time(20))


@dataclass
class ReplayResult:
    mode: str
    predictions: pd.DataFrame  # one row per game: date, actual, forecast, lower, upper, version
    events: list[dict[str, str]] = field(default_factory=list)  # promotions, rollbacks, ...

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e["kind"] == kind)


class SimulatedClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def at(self, day: pd.Timestamp, time: dt.time) -> dt.datetime:
        self.now = dt.datetime.combine(day.date(), time, tzinfo=dt.UTC)
        return self.now

    def __call__(self) -> dt.datetime:
        return self.now


def _event(result: StepResult, at: dt.datetime) -> dict[str, str] | None:
    """What the replay report shows of a step: decisions, ramps and new versions."""
    kind: str = result.step
    if result.step == Step.DECIDE_ROLLOUT:
        state = result.report
        if state is None:
            return None
        kind = state.decision if state.decision else "ramp"
        if kind == "ramp" and not result.metrics.get("ramps"):
            return None
    elif result.version is None:
        return None
    return {
        "date": at.date().isoformat(),
        "kind": kind,
        "version": result.version or "",
        "detail": result.detail,
    }


def _deployment(workdir: Path, games: pd.DataFrame, policy: Policy) -> Context:
    workdir.mkdir(parents=True, exist_ok=True)
    log = PredictionLog(f"sqlite:///{workdir / 'predictions.db'}").migrate()
    store = FileStore(workdir / "registry")
    return Context(
        registry=Registry(store),
        games=GameSource.of(games),
        gitops=GitOpsTarget(ensure_repo(workdir / "gitops")),
        state=FileStore(workdir / "lifecycle-state"),
        open_log=lambda: log,
        policy=policy,
    )


def run_replay(
    games: pd.DataFrame,
    season: int,
    *,
    continuous: bool,
    workdir: Path,
    base: tuple[HalftimeEnsemble, TrainingWindow] | None = None,
    progress: Callable[[int, int], None] | None = None,
    policy: Policy | None = None,
) -> ReplayResult:
    """Replay ``season`` of ``games`` (history = every earlier game). ``base``: an already
    trained version 1 (shared by the frozen and continuous runs)."""
    data = with_features(games)
    dates = order_dates(data)
    season_start = dates[data["season"] == season].min()
    if pd.isna(season_start):
        raise ValueError(f"no games in season {season}")
    played = data[(data["season"] == season) & (dates >= season_start)]
    ctx = _deployment(workdir, data, policy or Policy())
    clock = SimulatedClock(dt.datetime.combine(season_start.date(), MORNING, tzinfo=dt.UTC))
    bootstrap(ctx, clock(), trained=base or train_ensemble(data[dates < season_start]))
    engine = ForecastEngine(
        ctx.registry,
        ctx.log,
        cache_dir=workdir / "model-cache",
        routing_file=ctx.gitops.routing_path,
        clock=clock,
        explain=False,
        online_intervals=continuous,
    )
    engine.reload(force=True)
    events: list[dict[str, str]] = []
    rows: list[dict[str, object]] = []
    last_tick = clock() - dt.timedelta(days=1)
    by_day = list(played.groupby(order_dates(played).dt.normalize(), sort=True))
    for day_index, (day, day_games) in enumerate(by_day):
        if continuous:
            last_tick = _tick(ctx, last_tick, clock.at(day, MORNING), events)
        engine.reload(force=True)
        rows.extend(_play_day(engine, clock, day, day_games))
        if continuous:
            last_tick = _tick(ctx, last_tick, clock.at(day, EVENING), events)
        if progress is not None:
            progress(day_index + 1, len(by_day))
    ctx.log.engine.dispose()
    return ReplayResult("continuous" if continuous else "frozen", pd.DataFrame(rows), events)


def _tick(
    ctx: Context, last: dt.datetime, now: dt.datetime, events: list[dict[str, str]]
) -> dt.datetime:
    """Run the steps that fell due since the last tick; returns the new tick time."""
    for step in due_steps(last, now):
        for result in run_step(ctx, step, now):
            event = _event(result, now)
            if event is not None:
                events.append(event)
    return now


def _play_day(
    engine: ForecastEngine, clock: SimulatedClock, day: pd.Timestamp, day_games: pd.DataFrame
) -> list[dict[str, object]]:
    """Every game of the day forecast at 19:00, then every outcome at 19:20."""
    X, y = design_matrix(day_games)
    ids = day_games["game_id"].astype(str).tolist()
    clock.at(day, GAMES_AT)
    served = [engine.predict_row(game_id, X[i : i + 1]) for i, game_id in enumerate(ids)]
    clock.at(day, OUTCOMES_AT)
    for game_id, actual in zip(ids, y, strict=True):
        engine.record_outcome(game_id, float(actual))
    return [
        {
            "game_id": game_id,
            "date": day,
            "actual": y[i],
            "m_18": X[i, 18],
            "forecast": f.forecast,
            "lower": f.lower,
            "upper": f.upper,
            "version": f.model_version,
            "arm": f.arm,
        }
        for i, (game_id, f) in enumerate(zip(ids, served, strict=True))
    ]


def monthly_table(frozen: ReplayResult, continuous: ReplayResult) -> pd.DataFrame:
    """MAE, coverage and width by month for both modes, plus the season."""
    rows = []
    for result in (frozen, continuous):
        p = result.predictions
        month = pd.to_datetime(p["date"]).dt.to_period("M").astype(str)
        for key, part in [*p.groupby(month), ("season", p)]:
            covered = (part["actual"] >= part["lower"]) & (part["actual"] <= part["upper"])
            rows.append(
                {
                    "mode": result.mode,
                    "month": key,
                    "games": len(part),
                    "mae": float((part["forecast"] - part["actual"]).abs().mean()),
                    "persistence_mae": float((part["m_18"] - part["actual"]).abs().mean()),
                    "coverage": float(covered.mean()),
                    "width": float((part["upper"] - part["lower"]).mean()),
                }
            )
    return pd.DataFrame(rows)
