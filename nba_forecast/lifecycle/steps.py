"""The lifecycle steps on a registry and a prediction log: what the CLI commands and the KFP
components call (one function per step)."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.registry import Registry, RegistryError
from nba_forecast.lifecycle.rollout import Rollout, RolloutConfig
from nba_forecast.lifecycle.training import (
    history_before,
    retrain_due,
    train_ensemble,
    update_dejavu,
    with_features,
)
from nba_forecast.lifecycle.validate import ValidationConfig, ValidationReport, validate
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.storage.object_store import ObjectNotFound
from nba_forecast.storage.prediction_log import PredictionLog

ROLLOUT_KEY = "rollouts/current.json"
HOLDOUT_DAYS = 45  # retrain leaves these days out, so validation sees unseen games


@dataclass(frozen=True)
class StepResult:
    candidate: str | None  # the version the step made, if any
    detail: str


def register_candidate(
    registry: Registry,
    directory: Path,
    *,
    reason: str,
    parent: str,
    data_window: dict[str, object] | None = None,
) -> str | None:
    """Register a model directory and point ``candidate`` at it; None if it equals
    ``parent``. Re-running with the same content changes nothing."""
    version = registry.register(directory, parent=parent, data_window=data_window)["version"]
    if version == parent:
        return None
    if registry.aliases().get("candidate") != version:
        registry.promote("candidate", version, reason=reason)
    return version


def update_dejavu_step(
    registry: Registry, finished: pd.DataFrame, history: pd.DataFrame, as_of: dt.datetime
) -> StepResult:
    """Production plus the finished games (before ``as_of``) in its analog database."""
    finished = history_before(finished, as_of)
    production = registry.resolve("production")
    with tempfile.TemporaryDirectory() as tmp:
        source = registry.pull(production, Path(tmp) / "production")
        target, added = update_dejavu(source, finished, history, Path(tmp) / "new")
        version = register_candidate(
            registry, target, reason=f"update-dejavu: {added} games", parent=production
        )
    return StepResult(version, f"{added} games added to the analog database")


def retrain_step(
    registry: Registry,
    games: pd.DataFrame,
    as_of: dt.datetime,
    *,
    force: bool = False,
    holdout_days: int = HOLDOUT_DAYS,
) -> StepResult:
    """When due (or forced): every component refitted on the games before
    ``as_of - holdout_days`` (LSTM warm-started from production) -> candidate."""
    production = registry.resolve("production")
    cutoff = as_of - dt.timedelta(days=holdout_days)
    history = history_before(games, cutoff)
    trained_to = registry.manifest(production).get("data_window", {}).get("trained_to")
    new_games = (
        len(history)
        if trained_to is None
        else int((pd.to_datetime(history["game_date"]) > pd.Timestamp(trained_to)).sum())
    )
    due, reason = retrain_due(trained_to, new_games, cutoff)
    if not (due or force):
        return StepResult(None, f"not due: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        current = HalftimeEnsemble.load(registry.pull(production, Path(tmp) / "production"))
        model, window = train_ensemble(history, warm_start_from=current)
        version = register_candidate(
            registry,
            model.save(Path(tmp) / "retrained"),
            reason=f"retrain: {reason}",
            parent=production,
            data_window=window.as_dict(),
        )
    return StepResult(version, f"retrained ({reason})")


def validate_step(
    registry: Registry,
    champion: str,
    candidate: str,
    games: pd.DataFrame,
    config: ValidationConfig | None = None,
) -> ValidationReport:
    """Champion vs candidate on ``games`` (with their history for the features)."""
    data = with_features(games)
    X, y = design_matrix(data[data["_evaluate"]] if "_evaluate" in data else data)
    with tempfile.TemporaryDirectory() as tmp:
        models = [
            HalftimeEnsemble.load(registry.pull(name, Path(tmp) / label))
            for name, label in ((champion, "champion"), (candidate, "candidate"))
        ]
    return validate(models[0], models[1], X, y, config)


def holdout_games(
    games: pd.DataFrame, as_of: dt.datetime, holdout_days: int = HOLDOUT_DAYS
) -> pd.DataFrame:
    """All games before ``as_of``, those of the last ``holdout_days`` marked for evaluation."""
    before = history_before(games, as_of)
    dates = pd.to_datetime(before["game_date"])
    return before.assign(
        _evaluate=dates >= pd.Timestamp((as_of - dt.timedelta(days=holdout_days)).date())
    )


def rollout_state(registry: Registry) -> Rollout | None:
    try:
        return Rollout.from_json(registry.store.get(ROLLOUT_KEY).decode())
    except ObjectNotFound:
        return None


def _commit(registry: Registry, state: Rollout, repo: Path, env: str, message: str) -> None:
    live = state.decision is None
    registry.store.put(ROLLOUT_KEY, state.to_json().encode())
    gitops.commit_routing(
        repo,
        env,
        production=registry.resolve("production"),
        challenger=state.challenger if live else None,
        share_b=state.share_b if live else 0.0,
        salt=state.salt,
        message=message,
    )


def start_rollout(
    registry: Registry,
    candidate: str,
    repo: Path,
    *,
    env: str = "production",
    share: float = 0.1,
    report: str = "",
) -> Rollout:
    """Begin an A/B test of ``candidate`` against production; writes the routing to Git."""
    production = registry.resolve("production")
    challenger = registry.resolve(candidate)
    if challenger == production:
        raise RegistryError("the candidate is already production")
    current = rollout_state(registry)
    if current is not None and current.decision is None and current.challenger == challenger:
        return current  # already running: re-running changes nothing
    state = Rollout(
        production,
        challenger,
        salt=challenger,
        config=RolloutConfig(ramp=tuple(sorted({share, 0.5, 1.0}))),
    )
    message = f"A/B start: {challenger} at {state.share_b:.0%} against {production}"
    _commit(registry, state, repo, env, message + (f"\n\n{report}" if report else ""))
    return state


def decide_rollout(
    registry: Registry,
    log: PredictionLog,
    as_of: dt.datetime,
    repo: Path,
    *,
    env: str = "production",
) -> Rollout:
    """Feed the logged paired forecasts (both versions scored each game) to the running
    rollout in time order, act on its decision and write the routing. Games already seen
    are skipped, so re-running with the same ``as_of`` changes nothing."""
    state = rollout_state(registry)
    if state is None:
        raise RegistryError("no rollout started")
    joined = log.joined(as_of - dt.timedelta(days=365), as_of)
    both = joined[joined["model_version"].isin([state.champion, state.challenger])]
    if not both.empty:
        paired = both.pivot_table(
            index=["game_id", "predicted_at", "actual"], columns="model_version", values="forecast"
        ).dropna()
        paired = paired.reset_index().sort_values("predicted_at")
        if {state.champion, state.challenger} <= set(paired.columns):
            for _, row in paired.iterrows():
                action = state.observe(
                    str(row["game_id"]),
                    float(row["actual"]),
                    float(row[state.champion]),
                    float(row[state.challenger]),
                )
                if action == "promote":
                    registry.promote(
                        "production", state.challenger, reason=f"A/B won: {state.reason}"
                    )
                elif action == "rollback":
                    registry.promote(
                        "candidate", state.champion, reason=f"A/B rolled back: {state.reason}"
                    )
                if state.decision is not None:
                    break
    verdict = state.decision or f"running at {state.share_b:.0%}"
    _commit(registry, state, repo, env, f"A/B {verdict}: {state.challenger} {state.reason}".strip())
    return state
