"""The steps that change what serves, on a real registry, SQLite log and git repository:
A/B start, decisions from the pairs the servers logged, roll forward."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from nba_forecast.lifecycle.context import Context
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.promotion import (
    decide_rollout,
    roll_forward,
    rollout_state,
    start_rollout,
)
from nba_forecast.lifecycle.run import run_step
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionRecord
from nba_forecast.storage.registry import RegistryError
from tests.integration.test_lifecycle_steps import deployment

T0 = dt.datetime(2026, 1, 1, 19, tzinfo=dt.UTC)


def version(ctx: Context, tmp_path: Path, name: str) -> str:
    directory = tmp_path / "models" / name
    directory.mkdir(parents=True)
    (directory / "ensemble.json").write_text(f'{{"name": "{name}"}}')
    return ctx.registry.register(directory).version


@pytest.fixture
def ab(tmp_path: Path) -> tuple[Context, str, str]:
    ctx = deployment(tmp_path)
    champion, challenger = version(ctx, tmp_path, "a"), version(ctx, tmp_path, "b")
    ctx.registry.promote("production", champion, reason="test")
    ctx.registry.promote("candidate", challenger, reason="test")
    return ctx, champion, challenger


def log_games(
    ctx: Context, champion: str, challenger: str, n: int, challenger_sd: float, start: int = 0
) -> None:
    """Served + shadow rows of each game, written a few ms apart as a real server does."""
    rng = np.random.default_rng(start)
    predictions, outcomes = [], []
    for i in range(start, start + n):
        game, at, actual = f"002{i:07d}", T0 + dt.timedelta(hours=i), float(rng.normal(0, 8))
        arm = "B" if i % 2 else "A"
        for model, sd, role in ((champion, 5.0, "A"), (challenger, challenger_sd, "B")):
            forecast = actual + float(rng.normal(0, sd))
            row_arm = role if role == arm else "shadow"
            stamp = at + dt.timedelta(milliseconds=7 if row_arm == "shadow" else 0)
            predictions.append(
                PredictionRecord(
                    game, stamp, model, row_arm, forecast, forecast - 10, forecast + 10
                )
            )
        outcomes.append(OutcomeRecord(game, actual, at + dt.timedelta(minutes=20)))
    ctx.log.record_predictions(predictions)
    ctx.log.record_outcomes(outcomes)


def test_a_better_challenger_is_promoted_from_the_logged_pairs(ab, tmp_path: Path) -> None:
    ctx, champion, challenger = ab
    # stand-in models (they cannot forecast): no offline comparison first
    started = start_rollout(ctx, T0 - dt.timedelta(hours=1), compare=False)
    assert started.version == challenger and ctx.gitops.read().challenger == challenger
    assert start_rollout(ctx, T0).detail.endswith("already running")  # idempotent
    log_games(ctx, champion, challenger, 300, challenger_sd=1.0)
    decided = decide_rollout(ctx, T0 + dt.timedelta(days=30))
    state = decided.report
    assert state.decision == "promote" and state.n >= 100  # pairs despite 7 ms apart
    assert ctx.registry.resolve("production") == challenger
    routing = ctx.gitops.read()
    assert routing.production == challenger and routing.challenger is None
    history = len(ctx.registry.history())
    decide_rollout(ctx, T0 + dt.timedelta(days=30))
    assert len(ctx.registry.history()) == history  # no rollout running: nothing changes


def test_a_worse_challenger_is_rolled_back(ab) -> None:
    ctx, champion, challenger = ab
    start_rollout(ctx, T0 - dt.timedelta(hours=1), compare=False)
    log_games(ctx, champion, challenger, 400, challenger_sd=9.0)
    state = decide_rollout(ctx, T0 + dt.timedelta(days=30)).report
    assert state.decision == "rollback" and ctx.registry.resolve("production") == champion
    assert ctx.registry.resolve("candidate") == champion
    assert ctx.gitops.read().challenger is None


def test_one_experiment_at_a_time_and_bad_input(ab, tmp_path: Path) -> None:
    ctx, _, challenger = ab
    with pytest.raises(RegistryError, match="already production"):
        start_rollout(ctx, T0, candidate="production")
    start_rollout(ctx, T0, compare=False)
    third = version(ctx, tmp_path, "c")
    # a version no step made ranks lowest: it waits for the running test, which goes on
    waiting = start_rollout(ctx, T0, candidate=third)
    assert waiting.event == "queued" and f"waits for the A/B test of {challenger}" in waiting.detail
    assert rollout_state(ctx).challenger == challenger
    # the policy holds back steps that would start another test
    (skipped,) = run_step(ctx, Step.UPDATE_DEJAVU, T0)
    assert skipped.version is None and "skipped" in skipped.detail


def test_roll_forward_promotes_and_commits(ab) -> None:
    ctx, _, challenger = ab
    result = roll_forward(ctx, T0, version="candidate", reason="recalibrated")
    assert result.version == challenger and ctx.registry.resolve("production") == challenger
    assert ctx.gitops.read().production == challenger
    again = len(ctx.registry.history())
    roll_forward(ctx, T0, version=challenger)
    assert len(ctx.registry.history()) == again  # already production: no new move
