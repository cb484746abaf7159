"""The main job: replay a season game by game as production traffic, frozen or continuous.

Both modes train on every game before the season, register version 1 as production, then
walk the season day by day in date order: forecast each game from m_0..m_18 (and pre-game
features), log the forecast, then record the halftime outcome. A simulated clock fires the
scheduled steps (``schedules.CADENCES``) in continuous mode only:

* every outcome: the served interval adapts online (ACI);
* daily: coverage-drift test on the last 30 days -> recalibrated candidate -> interval gates
  -> promoted (points unchanged, so no A/B is needed);
* weekly: finished games join the Dejavu database -> candidate -> A/B rollout;
* monthly, when due: retrain on everything so far (LSTM warm start) -> candidate -> A/B.

An A/B rollout serves the challenger to a sticky, ramping share of games, shadow-scores it on
all of them, and promotes or rolls back on an always-valid sequential test, committing the
routing to the GitOps repository at every change.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.splits import order_dates
from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.recalibrate import coverage_drift, recalibrated_model
from nba_forecast.lifecycle.registry import Registry
from nba_forecast.lifecycle.rollout import Rollout, RolloutConfig
from nba_forecast.lifecycle.schedules import due_steps
from nba_forecast.lifecycle.training import (
    retrain_due,
    train_ensemble,
    update_dejavu,
    with_features,
)
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord

logger = logging.getLogger(__name__)
GAME_TIME = dt.time(19, 0)  # forecasts at 6:00 Q2 of a 19:00 tip-off; outcomes 20 minutes later


@dataclass
class ReplayResult:
    mode: str
    predictions: pd.DataFrame  # one row per game: date, actual, forecast, lower, upper, version
    events: list[dict[str, str]] = field(default_factory=list)  # promotions, rollbacks, ...

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e["kind"] == kind)


class _Production:
    """The serving side of the replay: loaded models by version, the routing, the log."""

    def __init__(self, registry: Registry, log: PredictionLog, repo: Path, workdir: Path) -> None:
        self.registry, self.log, self.repo, self.workdir = registry, log, repo, workdir
        self.models: dict[str, HalftimeEnsemble] = {}
        self.rollout: Rollout | None = None
        self.recalibrated_at: dt.datetime | None = None

    def model(self, version: str) -> HalftimeEnsemble:
        if version not in self.models:
            directory = self.registry.pull(version, self.workdir / "pulled" / version)
            self.models[version] = HalftimeEnsemble.load(directory)
        return self.models[version]

    def route(self, message: str) -> None:
        production = self.registry.resolve("production")
        rollout = self.rollout if self.rollout and self.rollout.decision is None else None
        gitops.commit_routing(
            self.repo,
            "production",
            production=production,
            challenger=rollout.challenger if rollout else None,
            share_b=rollout.share_b if rollout else 0.0,
            salt=rollout.salt if rollout else "",
            message=message,
        )


def _day_time(date: pd.Timestamp, time: dt.time = GAME_TIME) -> dt.datetime:
    return dt.datetime.combine(date.date(), time, tzinfo=dt.UTC)


def run_replay(
    games: pd.DataFrame,
    season: int,
    *,
    continuous: bool,
    workdir: Path,
    base_model: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    rollout_config: RolloutConfig | None = None,
) -> ReplayResult:
    """Replay ``season`` of ``games`` (history = every earlier game). ``base_model``: an
    already trained version-1 directory, shared by the frozen and continuous runs."""
    data = with_features(games)
    dates = order_dates(data)
    season_start = dates[data["season"] == season].min()
    if pd.isna(season_start):
        raise ValueError(f"no games in season {season}")
    history = data[dates < season_start]
    played = data[(data["season"] == season) & (dates >= season_start)]
    workdir.mkdir(parents=True, exist_ok=True)
    registry = Registry(FileStore(workdir / "registry"))
    log = PredictionLog(f"sqlite:///{workdir / 'predictions.db'}").migrate()
    server = _Production(registry, log, gitops.ensure_repo(workdir / "gitops"), workdir)
    if base_model is None:
        ensemble, _ = train_ensemble(history)
        base_model = ensemble.save(workdir / "v1")
    v1 = registry.register(base_model, data_window={"trained_to": str(season_start.date())})
    registry.promote("production", v1["version"], reason="replay start: trained on history")
    server.route("production: version 1")
    events: list[dict[str, str]] = []
    rows = []
    last_trained = str((season_start - pd.Timedelta(days=1)).date())
    finished: list[pd.DataFrame] = []
    clock = _day_time(season_start - pd.Timedelta(days=1))
    by_day = list(played.groupby(order_dates(played).dt.normalize(), sort=True))
    for day_index, (day, day_games) in enumerate(by_day):
        now = _day_time(day, dt.time(9, 0))
        if continuous:
            for step in due_steps(clock, now):
                event = _run_step(
                    step, server, history, finished, now, last_trained, rollout_config
                )
                if event is not None:
                    events.append(event)
                    if event["kind"] == "retrain":
                        last_trained = str((now - dt.timedelta(days=1)).date())
        clock = now
        rows.extend(_play_day(server, day_games, day, continuous, events))
        finished.append(day_games)
        if progress is not None:
            progress(day_index + 1, len(by_day))
    log.engine.dispose()
    return ReplayResult("continuous" if continuous else "frozen", pd.DataFrame(rows), events)


def _play_day(
    server: _Production,
    day_games: pd.DataFrame,
    day: pd.Timestamp,
    continuous: bool,
    events: list[dict[str, str]],
) -> list[dict[str, object]]:
    X, y = design_matrix(day_games)
    production = server.registry.resolve("production")
    rollout = server.rollout if server.rollout and server.rollout.decision is None else None
    champion = server.model(production)
    served = champion.predict_details(X, n_analogs=0)
    challenger = None
    if rollout is not None:
        challenger = server.model(rollout.challenger).predict_details(X, n_analogs=0)
    at = _day_time(day)
    predictions, outcomes, rows = [], [], []
    for i, game_id in enumerate(day_games["game_id"].astype(str)):
        arm = rollout.arm(game_id) if rollout else "A"
        use = challenger if arm == "B" and challenger is not None else served
        version = rollout.challenger if arm == "B" and rollout else production
        predictions.append(
            PredictionRecord(
                game_id,
                at,
                version,
                arm,
                float(use.forecast[i]),
                float(use.lower[i]),
                float(use.upper[i]),
            )
        )
        if challenger is not None and rollout is not None:
            shadow, shadow_version = (
                (served, production) if arm == "B" else (challenger, rollout.challenger)
            )
            predictions.append(
                PredictionRecord(
                    game_id,
                    at,
                    shadow_version,
                    "shadow",
                    float(shadow.forecast[i]),
                    float(shadow.lower[i]),
                    float(shadow.upper[i]),
                )
            )
        outcomes.append(OutcomeRecord(game_id, float(y[i]), at + dt.timedelta(minutes=20)))
        rows.append(
            {
                "game_id": game_id,
                "date": day,
                "actual": y[i],
                "m_18": X[i, 18],
                "forecast": use.forecast[i],
                "lower": use.lower[i],
                "upper": use.upper[i],
                "version": version,
                "arm": arm,
            }
        )
    server.log.record_predictions(predictions)
    server.log.record_outcomes(outcomes)
    if continuous:
        # the served intervals adapt online to every outcome (ACI)
        champion.update(y, served.forecast)
        if rollout is not None and challenger is not None:
            server.model(rollout.challenger).update(y, challenger.forecast)
            for i, game_id in enumerate(day_games["game_id"].astype(str)):
                action = rollout.observe(
                    game_id, float(y[i]), float(served.forecast[i]), float(challenger.forecast[i])
                )
                if action is not None:
                    _apply_rollout(server, rollout, action, at, events)
                    if rollout.decision is not None:
                        break
    return rows


def _apply_rollout(
    server: _Production,
    rollout: Rollout,
    action: str,
    at: dt.datetime,
    events: list[dict[str, str]],
) -> None:
    registry = server.registry
    if action == "promote":
        registry.promote("production", rollout.challenger, reason=f"A/B won: {rollout.reason}")
        # the online interval state carries over to the new production model
        live = server.model(rollout.champion).conformal_
        server.model(rollout.challenger).conformal_.alpha_t_ = live.alpha_t_
    elif action == "rollback":
        registry.promote("candidate", rollout.champion, reason=f"A/B rolled back: {rollout.reason}")
    server.route(
        f"{action}: {rollout.challenger} ({rollout.reason or f'share {rollout.share_b:.0%}'})"
    )
    events.append(
        {
            "date": at.date().isoformat(),
            "kind": action,
            "version": rollout.challenger,
            "detail": rollout.reason or f"challenger share {rollout.share_b:.0%}",
        }
    )


def _run_step(
    step: str,
    server: _Production,
    history: pd.DataFrame,
    finished: list[pd.DataFrame],
    now: dt.datetime,
    last_trained: str,
    rollout_config: RolloutConfig | None,
) -> dict[str, str] | None:
    registry = server.registry
    production = registry.resolve("production")
    busy = server.rollout is not None and server.rollout.decision is None
    if step == "recalibrate":
        # what users were served since the last recalibration (at most 30 days back); not
        # only the current version's rows as in run_recalibration: right after a promotion
        # the new version has too few games of its own for the drift test
        start = max(
            now - dt.timedelta(days=30), server.recalibrated_at or now - dt.timedelta(days=30)
        )
        joined = server.log.joined(start, now)
        joined = joined[joined["arm"] != "shadow"].drop_duplicates("game_id")
        drift = coverage_drift(joined)
        if not drift.drifted:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            source = server.model(production).save(Path(tmp) / "live")  # with its ACI state
            target = recalibrated_model(source, joined, Path(tmp) / "recalibrated", half_life=200)
            version = registry.register(target, parent=production)["version"]
        registry.promote("production", version, reason=f"recalibration: {drift.reason}")
        server.recalibrated_at = now
        server.route(f"recalibrated production: {version}")
        return {
            "date": now.date().isoformat(),
            "kind": "recalibration",
            "version": version,
            "detail": drift.reason,
        }
    if step in ("update-dejavu", "retrain") and not busy and finished:
        new_games = pd.concat(finished, ignore_index=True)
        all_games = pd.concat([history, new_games], ignore_index=True)
        with tempfile.TemporaryDirectory() as tmp:
            if step == "update-dejavu":
                source = server.model(production).save(Path(tmp) / "live")
                target, added = update_dejavu(source, new_games, all_games, Path(tmp) / "dejavu")
                if added == 0:
                    return None
                detail = f"{added} games added to the analog database"
            else:
                due, detail = retrain_due(last_trained, len(new_games), now)
                if not due:
                    return None
                model, _ = train_ensemble(all_games, warm_start_from=server.model(production))
                target = model.save(Path(tmp) / "retrained")
            version = registry.register(target, parent=production)["version"]
        if version == production:
            return None
        registry.promote("candidate", version, reason=f"{step}: {detail}")
        server.rollout = Rollout(
            production,
            version,
            salt=f"{version}-{now.date()}",
            config=rollout_config or RolloutConfig(),
        )
        server.route(f"A/B start: {version} at {server.rollout.share_b:.0%} ({step})")
        return {"date": now.date().isoformat(), "kind": step, "version": version, "detail": detail}
    return None


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
                    "mae": float(np.abs(part["forecast"] - part["actual"]).mean()),
                    "persistence_mae": float(np.abs(part["m_18"] - part["actual"]).mean()),
                    "coverage": float(covered.mean()),
                    "width": float((part["upper"] - part["lower"]).mean()),
                }
            )
    return pd.DataFrame(rows)
