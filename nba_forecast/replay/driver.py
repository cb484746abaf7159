"""The main job: replay seasons game by game as production traffic, frozen or continuous.

The replay is only a simulated clock above the deployed parts. Both modes register one
trained model as production, then walk the seasons (consecutive ones as one production run:
the off-season is just days without games, after which the monthly retrain falls due) day by
day: at 09:00 the lifecycle steps
that are due (``lifecycle.cadence``) run through ``lifecycle.run.run_step`` with the same
policy as the KFP pipelines (continuous mode only); at 19:00 every game of the day is
forecast by the serving ``ForecastEngine`` (its A/B arms, shadow scoring and logging; the
routing read from the GitOps repository the steps commit to); at 19:20 the halftime
outcomes reach the engine, which adapts the served intervals online (continuous only).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nba_forecast.data.splits import order_dates
from nba_forecast.evaluation.metrics import winkler_score
from nba_forecast.lifecycle.bootstrap import bootstrap
from nba_forecast.lifecycle.cadence import cadence, due_steps
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
# evening (after the outcomes) the hourly ones, as a cluster's hourly runs would (in the
# morning they would find nothing new since the evening: no games were played overnight)
MORNING, GAMES_AT, OUTCOMES_AT, EVENING = (dt.time(9), dt.time(19), dt.time(19, 20), dt.time(20))


@dataclass
class ReplayResult:
    mode: str
    predictions: pd.DataFrame  # one row per game: date, season, actual, forecast, interval, ...
    events: list[dict[str, str]] = field(default_factory=list)  # promotions, rollbacks, ...
    # per scheduled step: how often its schedule fired and it was due by its own rule
    # ("due"), ran, waited for a running A/B test ("blocked"), or had nothing to do
    steps: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e["kind"] == kind)

    def tally(self, result: StepResult) -> None:
        counts = self.steps.setdefault(
            str(result.step), {"due": 0, "ran": 0, "blocked": 0, "not_due": 0}
        )
        counts[result.status] = counts.get(result.status, 0) + 1
        if result.status != "not_due":
            counts["due"] += 1


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
    kind: str = result.event or result.step
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


def replay_seasons(games: pd.DataFrame, seasons: Sequence[int]) -> list[int]:
    """``seasons`` checked: consecutive, and each one in ``games``."""
    chosen = sorted(set(seasons))
    if not chosen:
        raise ValueError("no season to replay")
    if chosen != list(range(chosen[0], chosen[-1] + 1)):
        raise ValueError(f"seasons must be consecutive, got {chosen}")
    have = set(games["season"].astype(int))
    missing = [s for s in chosen if s not in have]
    if missing:
        which = str(missing) if len(missing) <= 5 else f"[{missing[0]}, ..., {missing[-1]}]"
        raise ValueError(
            f"no games of season(s) {which} in the data "
            f"(have {min(have)}-{max(have)}); add newer games with --data"
        )
    return chosen


def run_replay(
    games: pd.DataFrame,
    seasons: int | Sequence[int],
    *,
    continuous: bool,
    workdir: Path,
    base: tuple[HalftimeEnsemble, TrainingWindow] | None = None,
    progress: Callable[[int, int], None] | None = None,
    policy: Policy | None = None,
) -> ReplayResult:
    """Replay ``seasons`` (one, or consecutive ones as one run) of ``games`` (history =
    every earlier game). ``base``: an already trained version 1 (shared by the frozen and
    continuous runs)."""
    chosen = replay_seasons(games, [seasons] if isinstance(seasons, int) else seasons)
    data = with_features(games)
    dates = order_dates(data)
    in_run = data["season"].astype(int).isin(chosen)
    start = dates[in_run].min()
    played = data[in_run]
    ctx = _deployment(workdir, data, policy or Policy())
    clock = SimulatedClock(dt.datetime.combine(start.date(), MORNING, tzinfo=dt.UTC))
    bootstrap(ctx, clock(), trained=base or train_ensemble(data[dates < start]))
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
    result = ReplayResult("continuous" if continuous else "frozen", pd.DataFrame())
    rows: list[dict[str, object]] = []
    last_tick = clock() - dt.timedelta(days=1)
    by_day = list(played.groupby(order_dates(played).dt.normalize(), sort=True))
    for day_index, (day, day_games) in enumerate(by_day):
        if continuous:
            last_tick = _tick(ctx, last_tick, clock.at(day, MORNING), result, hourly=False)
        engine.reload(force=True)
        rows.extend(_play_day(engine, clock, day, day_games))
        if continuous:
            last_tick = _tick(ctx, last_tick, clock.at(day, EVENING), result)
        if progress is not None:
            progress(day_index + 1, len(by_day))
    ctx.log.engine.dispose()
    result.predictions = pd.DataFrame(rows)
    return result


def _tick(
    ctx: Context, last: dt.datetime, now: dt.datetime, result: ReplayResult, hourly: bool = True
) -> dt.datetime:
    """Run the steps that fell due since the last tick (the hourly ones only if
    ``hourly``); returns the new tick time."""
    for step in due_steps(last, now):
        if not hourly and cadence(step).period == "hour":
            continue
        produced = run_step(ctx, step, now)
        result.tally(produced[0])
        for done in _with_started(produced):
            event = _event(done, now)
            if event is not None:
                result.events.append(event)
    return now


def _with_started(results: list[StepResult]) -> list[StepResult]:
    """The results and, after each, the steps it started itself."""
    flat: list[StepResult] = []
    for r in results:
        flat.extend([r, *_with_started(list(r.then))])
    return flat


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
            "season": int(day_games["season"].iloc[i]),
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


def period_table(frozen: ReplayResult, continuous: ReplayResult) -> pd.DataFrame:
    """MAE, coverage, mean width and Winkler score for both modes: by season and month, each
    season ("all" months), and the whole run (season "all")."""
    rows = []
    for result in (frozen, continuous):
        p = result.predictions
        month = pd.to_datetime(p["date"]).dt.to_period("M").astype(str)
        parts = [
            *(((int(s), m), part) for (s, m), part in p.groupby([p["season"], month])),
            *(((int(s), "all"), part) for s, part in p.groupby("season")),
            (("all", "all"), p),
        ]
        for (season, key), part in parts:
            rows.append({"mode": result.mode, "season": season, "month": key, **_scores(part)})
    return pd.DataFrame(rows)


def _scores(part: pd.DataFrame) -> dict[str, float | int]:
    lower, upper, actual = part["lower"], part["upper"], part["actual"]
    winkler = winkler_score(actual, lower, upper)
    return {
        "games": len(part),
        "mae": float((part["forecast"] - actual).abs().mean()),
        "persistence_mae": float((part["m_18"] - actual).abs().mean()),
        "coverage": float(((actual >= lower) & (actual <= upper)).mean()),
        "width": float((upper - lower).mean()),
        "winkler": float(winkler.mean()),
    }


def conditional_coverage(
    result: ReplayResult, buckets: int = 5
) -> dict[str, list[dict[str, float]]]:
    """Coverage, mean width and games by quintile of the served interval's width and of
    |m_18| (does the interval hold in narrow and wide, close and lopsided games?). Widths
    that are all equal make one bucket."""
    p = result.predictions
    covered = (p["actual"] >= p["lower"]) & (p["actual"] <= p["upper"])
    width = p["upper"] - p["lower"]
    out: dict[str, list[dict[str, float]]] = {}
    for name, key in (("width", width), ("abs_m18", p["m_18"].abs())):
        ranks = key.rank(method="first")  # ties split evenly, so every quintile has games
        spread = key.round(9).nunique() > 1  # one width for all (to rounding): one bucket
        bucket = pd.qcut(ranks, buckets, labels=False) if spread else ranks * 0
        out[name] = []
        for b in sorted(bucket.unique()):
            part = bucket == b
            out[name].append(
                {
                    "bucket": int(b) + 1,
                    "games": int(part.sum()),
                    "from": float(key[part].min()),
                    "to": float(key[part].max()),
                    "coverage": float(covered[part].mean()),
                    "width": float(width[part].mean()),
                }
            )
    return out
