"""The monthly step: when due, every component refitted on the games before
``as_of - holdout_days`` (earlier when fewer than ``holdout_games`` finished since, as after
an off-season), the LSTM warm-started from a copy of production's, so that validation then
scores champion and candidate on games neither has seen.

"Due" counts from the newest training in flight: production's, the running A/B test's
challenger's or the waiting candidate's, so a retrain that waits for a test is not redone
every month."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from nba_forecast.data.splits import order_dates
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.promotion import queued_candidate, running_rollout
from nba_forecast.lifecycle.training import history_before, train_ensemble
from nba_forecast.lifecycle.versions import load_model, register_candidate

HOLDOUT_DAYS = 45  # retrain leaves these days out, so validation sees unseen games
HOLDOUT_GAMES = 300  # ... and at least this many games


def retrain_due(
    last_trained: str | None,
    new_games: int,
    as_of: dt.datetime,
    *,
    min_days: int = 28,
    min_new_games: int = 300,
) -> tuple[bool, str]:
    """Due when at least ``min_days`` passed since the last training AND at least
    ``min_new_games`` finished games arrived since."""
    if last_trained is None:
        return True, "never trained"
    days = (as_of.date() - dt.date.fromisoformat(last_trained)).days
    due = days >= min_days and new_games >= min_new_games
    return due, (
        f"{days} days and {new_games} new games since {last_trained} "
        f"(rule: >= {min_days} days and >= {min_new_games} games)"
    )


def holdout_cutoff(
    games: pd.DataFrame, as_of: dt.datetime, holdout_days: int, holdout_games: int
) -> dt.datetime:
    """Training uses the games before this time: ``holdout_days`` before ``as_of``, or
    earlier so that at least ``holdout_games`` finished games are left out."""
    cutoff = as_of - dt.timedelta(days=holdout_days)
    dates = order_dates(history_before(games, as_of)).sort_values()
    if len(dates) > holdout_games:
        nth_last = dates.iloc[-holdout_games].to_pydatetime().replace(tzinfo=dt.UTC)
        cutoff = min(cutoff, nth_last)
    return cutoff


def last_training(ctx: Context) -> str | None:
    """The newest ``trained_to`` of production, the running test's challenger and the
    candidate waiting for it."""
    versions = [ctx.registry.resolve("production")]
    live, waiting = running_rollout(ctx), queued_candidate(ctx)
    versions += [live.challenger] if live else []
    versions += [waiting["version"]] if waiting else []
    dates = [d for v in versions if (d := ctx.registry.manifest(v).trained_to) is not None]
    return max(dates) if dates else None


def retrain(
    ctx: Context,
    as_of: dt.datetime,
    *,
    force: bool = False,
    holdout_days: int = HOLDOUT_DAYS,
    holdout_games: int = HOLDOUT_GAMES,
) -> StepResult:
    production = ctx.registry.resolve("production")
    trained_to = last_training(ctx)
    cutoff = holdout_cutoff(ctx.games.games(), as_of, holdout_days, holdout_games)
    history = history_before(ctx.games.games(), cutoff)
    dates = order_dates(history)
    new_games = (
        len(history) if trained_to is None else int((dates > pd.Timestamp(trained_to)).sum())
    )
    due, reason = retrain_due(trained_to, new_games, cutoff)
    if not (due or force):
        return StepResult(
            Step.RETRAIN, f"not due: {reason}", metrics={"retrained": 0.0}, status="not_due"
        )
    current = load_model(ctx.registry, production)
    model, window = train_ensemble(history, warm_start_from=current)
    version = register_candidate(
        ctx.registry,
        model,
        parent=production,
        reason=f"{Step.RETRAIN}: {reason}",
        data_window=window.as_dict(),
        metrics=window.metrics(model),
        made_by=Step.RETRAIN,
    )
    metrics = {"retrained": float(version is not None), "training_games": window.games}
    return StepResult(Step.RETRAIN, f"retrained ({reason})", version, metrics)
