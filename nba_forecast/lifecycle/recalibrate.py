"""Recalibrate the production interval when its coverage drifts.

1. Drift test: a two-sided binomial test of the recent misses of what users were served
   against the target rate, only with at least ``min_games`` outcomes. The window starts
   ``window_days`` back, or at production's own recalibration if that is later.
2. If it fires (or when forced): a copy of production whose conformal state comes from the
   recent ABSOLUTE residuals (recency-weighted, oldest first), the online adaptive state
   (alpha_t) carried forward. Production is never edited in place; the same inputs give the
   same content, so re-running with the same ``as_of`` registers the same version.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.versions import load_model, register_candidate

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


def served_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """What users were served: one row per game, shadow forecasts left out."""
    return joined[joined["arm"] != "shadow"].drop_duplicates("game_id")


def rows_of_training(ctx: Context, rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """The rows forecast by versions trained like ``version`` (the same last training
    game): their components and interval scale are ``version``'s, whatever analog games or
    interval state they had since."""
    trained_to = ctx.registry.manifest(version).trained_to
    kin = {
        v
        for v in rows["model_version"].unique()
        if v == version or ctx.registry.manifest(str(v)).trained_to == trained_to
    }
    return rows[rows["model_version"].isin(kin)]


def recalibrate(
    ctx: Context,
    as_of: dt.datetime,
    *,
    window_days: float = 30.0,
    min_games: int = 100,
    significance: float = 0.01,
    half_life: float | None = 500.0,
    force: bool = False,
) -> StepResult:
    """Test served coverage (forecasts of versions trained like production's); on drift
    (or ``force``) register a recalibrated copy of production as ``candidate``. Run by hand:
    the online interval adaptation is the scheduled recalibration (``cadence``)."""
    production = ctx.registry.resolve("production")
    manifest = ctx.registry.manifest(production)
    start = as_of - dt.timedelta(days=window_days)
    if manifest.recalibrated_to is not None:
        start = max(start, dt.datetime.fromisoformat(manifest.recalibrated_to))
    joined = (
        rows_of_training(ctx, served_rows(ctx.log.joined(start, as_of)), production)
        if start < as_of
        else pd.DataFrame()
    )
    drift = coverage_drift(
        joined if not joined.empty else pd.DataFrame(columns=["actual", "lower", "upper"]),
        min_games=min_games,
        significance=significance,
    )
    metrics = {"calibration_games": drift.n, "miss_rate_before": drift.miss_rate}
    logger.info("recalibrate: %s", drift.reason)
    if not (drift.drifted or force) or joined.empty:
        return StepResult(Step.RECALIBRATE, drift.reason, metrics=metrics, report=drift)
    ordered = joined.sort_values(["predicted_at", "game_id"], kind="stable")
    model = load_model(ctx.registry, production).recalibrated(
        ordered["actual"].to_numpy(float),
        ordered["forecast"].to_numpy(float),
        half_life=half_life,
        scale=ordered["scale"].fillna(1.0).to_numpy(float),  # older rows: one width for all
    )
    version = register_candidate(
        ctx.registry,
        model,
        parent=production,
        reason=f"{Step.RECALIBRATE} at {as_of.isoformat()}: {drift.reason}",
        data_window={
            **manifest.data_window,
            "recalibrated_from": start.isoformat(),
            "recalibrated_to": as_of.isoformat(),
        },
        metrics=metrics,
        made_by=Step.RECALIBRATE,
    )
    return StepResult(Step.RECALIBRATE, drift.reason, version, metrics, drift)
