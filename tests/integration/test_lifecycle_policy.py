"""Which candidate gets an A/B test, on real games, a real registry, SQLite log and git
repository: a candidate that forecasts like production is a data refresh; a retrain
supersedes a running analog-update test and waits behind a running retrain test (one queue
slot, newest wins); a decided test starts the waiting one; "due" counts from the newest
training in flight; retraining leaves out enough games even after an off-season."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba_forecast.lifecycle.context import Context, GameSource
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.promotion import (
    FINISHED_PREFIX,
    decide_rollout,
    queued_candidate,
    running_rollout,
    start_rollout,
)
from nba_forecast.lifecycle.retrain import holdout_cutoff, last_training
from nba_forecast.lifecycle.training import history_before, with_features
from nba_forecast.lifecycle.update_dejavu import served_component_forecasts
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionRecord
from nba_forecast.storage.registry import RegistryError
from tests.integration.test_lifecycle_steps import deployment

AS_OF = dt.datetime(2014, 3, 1, 9, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def games(shipped_games: pd.DataFrame) -> pd.DataFrame:
    return shipped_games[shipped_games["season"].between(2010, 2014)].reset_index(drop=True)


@pytest.fixture(scope="module")
def base(games: pd.DataFrame) -> HalftimeEnsemble:
    data = with_features(games[games["season"] <= 2012])
    X, y = design_matrix(data)
    half = len(X) // 2
    model = HalftimeEnsemble({"damped": DampedPersistence(), "linear": LinearForecaster()})
    return model.fit(X[:half], y[:half], X[half:], y[half:]).conformalize(X[half:], y[half:])


def weighted(model: HalftimeEnsemble, weights: list[float]) -> HalftimeEnsemble:
    twin = model.copy()
    twin.weights_ = np.array(weights)
    return twin


@pytest.fixture
def ctx(tmp_path: Path, games: pd.DataFrame, base: HalftimeEnsemble) -> Context:
    ctx = deployment(tmp_path)
    ctx.games = GameSource.of(games)
    production = register(ctx, tmp_path, weighted(base, [0.5, 0.5]), "bootstrap", "2013-06-01")
    ctx.registry.promote("production", production, reason="test")
    return ctx


def register(
    ctx: Context,
    tmp_path: Path,
    model: HalftimeEnsemble,
    made_by: str,
    trained_to: str,
    parent: str | None = None,
) -> str:
    name = f"{made_by}-{len(ctx.registry.versions())}"
    return ctx.registry.register(
        model.save(tmp_path / "models" / name),
        parent=parent,
        data_window={"trained_to": trained_to},
        made_by=made_by,
    ).version


def test_a_candidate_that_forecasts_like_production_is_a_data_refresh(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    same = register(ctx, tmp_path, weighted(base, [0.5001, 0.4999]), "update_dejavu", "2013-06-01")
    result = start_rollout(ctx, AS_OF, candidate=same)
    assert result.event == "refresh" and "data refresh, no A/B test" in result.detail
    assert result.metrics["mean_abs_difference"] <= ctx.policy.equivalence_tolerance
    assert result.metrics["games"] == ctx.policy.compare_games
    assert running_rollout(ctx) is None
    assert ctx.registry.resolve("production") == same
    assert ctx.gitops.read().production == same and ctx.gitops.read().challenger is None


def test_a_candidate_that_forecasts_differently_gets_an_ab_test(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    other = register(ctx, tmp_path, weighted(base, [0.0, 1.0]), "update_dejavu", "2013-06-01")
    result = start_rollout(ctx, AS_OF, candidate=other)
    assert result.event == "" and "beyond the tolerance" in result.detail
    live = running_rollout(ctx)
    assert live is not None and live.challenger == other
    assert ctx.gitops.read().challenger == other


def log_pairs(ctx: Context, champion: str, challenger: str, n: int, start: dt.datetime) -> None:
    """Served + shadow rows where the challenger is much better: the test decides."""
    rng = np.random.default_rng(0)
    predictions, outcomes = [], []
    for i in range(n):
        game, at, actual = f"00299{i:05d}", start + dt.timedelta(hours=i), float(rng.normal(0, 8))
        for version, sd, arm in ((champion, 6.0, "A"), (challenger, 1.0, "shadow")):
            f = actual + float(rng.normal(0, sd))
            predictions.append(PredictionRecord(game, at, version, arm, f, f - 10, f + 10))
        outcomes.append(OutcomeRecord(game, actual, at + dt.timedelta(minutes=20)))
    ctx.log.record_predictions(predictions)
    ctx.log.record_outcomes(outcomes)


def test_retrains_supersede_analog_tests_and_wait_behind_retrain_tests(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    production = ctx.registry.resolve("production")
    dejavu = register(ctx, tmp_path, weighted(base, [0.0, 1.0]), "update_dejavu", "2013-06-01")
    first, second, third = (
        register(ctx, tmp_path, weighted(base, w), "retrain", day)
        for w, day in (
            ([1.0, 0.0], "2014-01-15"),
            ([0.2, 0.8], "2014-02-01"),
            ([0.9, 0.1], "2014-02-10"),
        )
    )
    start_rollout(ctx, AS_OF, candidate=dejavu)
    superseding = start_rollout(ctx, AS_OF, candidate=first)
    (ended,) = superseding.then
    assert ended.event == "superseded" and ended.version == dejavu
    assert "retrain outranks update_dejavu" in ended.detail
    assert running_rollout(ctx).challenger == first  # type: ignore[union-attr]
    record = ctx.state.get(f"{FINISHED_PREFIX}{dejavu}.json").decode()
    assert '"decision": "superseded"' in record
    # a retrain does not outrank a retrain: it waits; a newer one takes its place
    waiting = start_rollout(ctx, AS_OF, candidate=second)
    assert waiting.event == "queued" and running_rollout(ctx).challenger == first  # type: ignore[union-attr]
    replaced = start_rollout(ctx, AS_OF, candidate=third)
    assert f"it replaces {second}" in replaced.detail
    assert queued_candidate(ctx)["version"] == third  # type: ignore[index]
    # "due" counts from the newest training in flight, not from production's
    assert last_training(ctx) == "2014-02-10"
    # the running test is decided: the waiting candidate's test starts at once
    log_pairs(ctx, production, first, 300, AS_OF + dt.timedelta(hours=1))
    decided = decide_rollout(ctx, AS_OF + dt.timedelta(days=30))
    assert decided.report.decision == "promote"
    assert ctx.registry.resolve("production") == first
    (started,) = decided.then
    assert started.step == Step.START_ROLLOUT and started.version == third
    assert running_rollout(ctx).challenger == third  # type: ignore[union-attr]
    assert running_rollout(ctx).champion == first  # type: ignore[union-attr]
    assert queued_candidate(ctx) is None
    assert ctx.gitops.read().challenger == third


def test_retraining_leaves_out_enough_games_after_an_off_season(games: pd.DataFrame) -> None:
    opening_day = dt.datetime(2014, 10, 28, 9, tzinfo=dt.UTC)  # 45 days back: no games
    cutoff = holdout_cutoff(games, opening_day, holdout_days=45, holdout_games=300)
    left_out = len(history_before(games, opening_day)) - len(history_before(games, cutoff))
    assert left_out >= 300
    mid_season = dt.datetime(2014, 2, 1, 9, tzinfo=dt.UTC)  # 45 days hold more than 300
    assert holdout_cutoff(games, mid_season, 45, 300) == mid_season - dt.timedelta(days=45)


def test_dejavus_share_is_refitted_from_the_served_component_forecasts(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    production = ctx.registry.resolve("production")
    names = ["damped", "dejavu"]
    assert served_component_forecasts(ctx, AS_OF, names, production) is None  # an empty log
    # a refresh of production (same training) and an older training served games too
    refreshed = register(ctx, tmp_path, weighted(base, [0.4, 0.6]), "update_dejavu", "2013-06-01")
    older = register(ctx, tmp_path, weighted(base, [0.3, 0.7]), "retrain", "2012-06-01")
    rows, outcomes = [], []
    for i in range(900):
        at = AS_OF - dt.timedelta(days=60) + dt.timedelta(hours=i)
        parts = {"damped": float(i % 7), "dejavu": float(i % 5)}
        served_by = older if i < 200 else (production if i % 2 else refreshed)
        rows.append(PredictionRecord(f"g{i}", at, served_by, "A", 1.0, -9, 11, components=parts))
        rows.append(PredictionRecord(f"g{i}", at, "w", "shadow", 1.0, -9, 11, components={}))
        outcomes.append(OutcomeRecord(f"g{i}", float(i % 3), at + dt.timedelta(minutes=20)))
    ctx.log.record_predictions(rows)
    ctx.log.record_outcomes(outcomes)
    P, y = served_component_forecasts(ctx, AS_OF, names, production)  # type: ignore[misc]
    # served rows of versions trained like production only, columns in name order
    assert P.shape == (700, 2) and len(y) == 700
    assert list(P[0]) == [200 % 7, 200 % 5] and y[0] == 200 % 3
    assert served_component_forecasts(ctx, AS_OF, ["damped", "lstm"], production) is None


def test_the_queue_keeps_the_higher_ranked_candidate(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    running = register(ctx, tmp_path, weighted(base, [1.0, 0.0]), "retrain", "2014-01-15")
    waiting = register(ctx, tmp_path, weighted(base, [0.2, 0.8]), "retrain", "2014-02-01")
    lower = register(ctx, tmp_path, weighted(base, [0.0, 1.0]), "update_dejavu", "2013-06-01")
    start_rollout(ctx, AS_OF, candidate=running)
    start_rollout(ctx, AS_OF, candidate=waiting)
    dropped = start_rollout(ctx, AS_OF, candidate=lower)
    assert dropped.event == "dropped" and f"{waiting} (retrain) outranks it" in dropped.detail
    assert queued_candidate(ctx)["version"] == waiting  # type: ignore[index]


def test_a_waiting_candidate_that_cannot_start_is_dropped_and_the_decision_stands(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    production = ctx.registry.resolve("production")
    running = register(ctx, tmp_path, weighted(base, [1.0, 0.0]), "retrain", "2014-01-15")
    stale = register(
        ctx, tmp_path, weighted(base, [0.0, 1.0]), "update_dejavu", "2013-06-01", production
    )
    start_rollout(ctx, AS_OF, candidate=running)
    # an analog update of the old production, waiting (put there by hand: rank equal)
    ranks = {Step.UPDATE_DEJAVU: 2, Step.RETRAIN: 2}
    ctx.policy = dataclasses.replace(ctx.policy, precedence=ranks)
    assert start_rollout(ctx, AS_OF, candidate=stale).event == "queued"
    log_pairs(ctx, production, running, 300, AS_OF + dt.timedelta(hours=1))
    decided = decide_rollout(ctx, AS_OF + dt.timedelta(days=30))
    assert decided.report.decision == "promote" and ctx.registry.resolve("production") == running
    (dropped,) = decided.then
    assert dropped.event == "dropped" and f"it was built on {production}" in dropped.detail
    assert queued_candidate(ctx) is None and running_rollout(ctx) is None


def test_start_again_after_a_data_refresh_changes_nothing(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    same = register(ctx, tmp_path, weighted(base, [0.5001, 0.4999]), "update_dejavu", "2013-06-01")
    ctx.registry.promote("candidate", same, reason="test")
    assert start_rollout(ctx, AS_OF).event == "refresh"
    history = len(ctx.registry.history())
    again = start_rollout(ctx, AS_OF)
    assert again.detail == f"{same} is already production"
    assert len(ctx.registry.history()) == history


def test_a_version_whose_files_are_damaged_never_gets_traffic(
    ctx: Context, base: HalftimeEnsemble, tmp_path: Path
) -> None:
    damaged = register(ctx, tmp_path, weighted(base, [0.0, 1.0]), "retrain", "2014-01-15")
    (tmp_path / "registry" / "versions" / damaged / "files" / "ensemble.json").write_text("{}")
    with pytest.raises(RegistryError, match="corrupt"):
        start_rollout(ctx, AS_OF, candidate=damaged, compare=False)
    assert running_rollout(ctx) is None and ctx.gitops.read() is None
