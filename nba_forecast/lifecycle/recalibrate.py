"""Recalibrate the production interval when its coverage drifts.

1. Drift test: a two-sided binomial test of the recent misses against the target rate, only
   with at least ``min_games`` outcomes.
2. If it fires (or when forced): a new conformal state from the recent ABSOLUTE residuals of
   the production forecasts (recency-weighted, oldest first), carrying the online adaptive
   state (alpha_t) forward. The result is a new model directory: the production version is
   never edited in place. Same inputs give the same directory content, so re-running with the
   same ``as_of`` registers the same version.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from nba_forecast.lifecycle.registry import Registry
from nba_forecast.models.conformal import AbsoluteResidualConformal
from nba_forecast.storage.prediction_log import PredictionLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftTest:
    n: int
    misses: int
    miss_rate: float
    target: float
    p_value: float
    drifted: bool
    reason: str


def coverage_drift(
    joined: pd.DataFrame, *, alpha: float = 0.05, min_games: int = 100, significance: float = 0.01
) -> DriftTest:
    """Binomial test of misses (actual outside [lower, upper]) against ``alpha``."""
    n = len(joined)
    if n == 0:
        return DriftTest(0, 0, float("nan"), alpha, 1.0, False, "no outcomes in the window")
    missed = (joined["actual"] < joined["lower"]) | (joined["actual"] > joined["upper"])
    misses = int(missed.sum())
    rate = misses / n
    if n < min_games:
        return DriftTest(
            n, misses, rate, alpha, 1.0, False, f"only {n} outcomes; the test needs {min_games}"
        )
    p_value = float(stats.binomtest(misses, n, alpha).pvalue)
    drifted = p_value < significance
    reason = f"miss rate {rate:.1%} vs target {alpha:.0%} over {n} games (p = {p_value:.4f}): " + (
        "drifted" if drifted else "within tolerance"
    )
    return DriftTest(n, misses, rate, alpha, p_value, drifted, reason)


def recalibrated_model(
    model_dir: Path,
    joined: pd.DataFrame,
    destination: Path,
    *,
    half_life: float | None = 500.0,
) -> Path:
    """Copy ``model_dir`` to ``destination`` with a conformal state fitted on the recent
    residuals of ``joined`` (columns predicted_at, forecast, actual)."""
    if joined.empty:
        raise ValueError("no recent outcomes to recalibrate on")
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(model_dir, destination)
    old = AbsoluteResidualConformal.load(model_dir)
    ordered = joined.sort_values(["predicted_at", "game_id"], kind="stable")
    new = AbsoluteResidualConformal(
        old.alpha, half_life=half_life, gamma=old.gamma, max_scores=old.max_scores
    ).conformalize(ordered["actual"].to_numpy(float), ordered["forecast"].to_numpy(float))
    new.alpha_t_ = old.alpha_t_  # the online adaptive state carries forward
    new.save(destination)
    logger.info(
        "recalibrated on %d outcomes: half-width %.2f -> %.2f",
        len(ordered),
        old.half_width(),
        new.half_width(),
    )
    return destination


@dataclass(frozen=True)
class RecalibrationResult:
    drift: DriftTest
    production: str
    candidate: str | None  # the new version, when one was made
    promoted: bool  # the candidate alias moved (False when it already pointed there)


def run_recalibration(
    log: PredictionLog,
    registry: Registry,
    as_of: dt.datetime,
    *,
    window_days: float = 30.0,
    min_games: int = 100,
    significance: float = 0.01,
    half_life: float | None = 500.0,
    force: bool = False,
) -> RecalibrationResult:
    """The daily step: test production's recent coverage; on drift (or ``force``) register a
    recalibrated copy and point the ``candidate`` alias at it."""
    production = registry.resolve("production")
    joined = log.joined(as_of - dt.timedelta(days=window_days), as_of)
    joined = joined[joined["model_version"] == production].drop_duplicates("game_id")
    drift = coverage_drift(joined, min_games=min_games, significance=significance)
    logger.info("recalibrate: %s", drift.reason)
    if not (drift.drifted or force):
        return RecalibrationResult(drift, production, None, False)
    with tempfile.TemporaryDirectory() as tmp:
        source = registry.pull(production, Path(tmp) / "production")
        target = recalibrated_model(source, joined, Path(tmp) / "candidate", half_life=half_life)
        manifest = registry.register(
            target,
            parent=production,
            data_window={
                "recalibrated_from": (as_of - dt.timedelta(days=window_days)).isoformat(),
                "recalibrated_to": as_of.isoformat(),
            },
            metrics={"calibration_games": len(joined), "miss_rate_before": drift.miss_rate},
        )
    candidate = manifest["version"]
    if registry.aliases().get("candidate") == candidate:
        return RecalibrationResult(drift, production, candidate, False)
    registry.promote(
        "candidate", candidate, reason=f"recalibration at {as_of.isoformat()}: {drift.reason}"
    )
    return RecalibrationResult(drift, production, candidate, True)
