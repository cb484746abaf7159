"""The lifecycle steps with KFP-shaped arguments: URLs and paths as strings, a metrics
object with ``log_metric``. Each KFP component calls one of these; the logic stays in the
step functions. (No KFP import here: the package runs without the SDK.)"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Protocol

from nba_forecast.data.loaders import load_margins
from nba_forecast.data.shipped import shipped_plus
from nba_forecast.lifecycle.collect import collect
from nba_forecast.lifecycle.monitor import monitor
from nba_forecast.lifecycle.recalibrate import run_recalibration
from nba_forecast.lifecycle.registry import Registry
from nba_forecast.lifecycle.steps import (
    holdout_games,
    retrain_step,
    start_rollout,
    update_dejavu_step,
    validate_step,
)
from nba_forecast.settings import Settings
from nba_forecast.storage.prediction_log import PredictionLog


class MetricsSink(Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


def resolve_as_of(text: str) -> dt.datetime:
    """ISO time; empty or an unresolved KFP placeholder (local runs) means now."""
    if not text or text.startswith("{{"):
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad as_of {text!r}: expected ISO 8601, e.g. 2015-01-15T09:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _games(uri: str) -> Any:
    return shipped_plus(Path(uri) if uri else None)[0]


def _log_metrics(sink: MetricsSink, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, int | float) and value == value:  # skip NaN
            sink.log_metric(name, float(value))


def collect_step(
    database_url: str, as_of: str, window_days: float, rows_path: str, metrics: MetricsSink
) -> bool:
    result = collect(
        PredictionLog.open(database_url or None), resolve_as_of(as_of), window_days=window_days
    )
    result.joined.to_parquet(rows_path, index=False)
    _log_metrics(
        metrics,
        {
            "rows": len(result.joined),
            "served_games": result.drift.n,
            "miss_rate": result.drift.miss_rate,
            "drift_p_value": result.drift.p_value,
        },
    )
    return result.drift.drifted


def recalibrate_step(
    database_url: str, registry_url: str, as_of: str, window_days: float, metrics: MetricsSink
) -> str:
    result = run_recalibration(
        PredictionLog.open(database_url or None),
        Registry.open(registry_url or None),
        resolve_as_of(as_of),
        window_days=window_days,
        force=True,
    )
    _log_metrics(
        metrics, {"calibration_games": result.drift.n, "miss_rate_before": result.drift.miss_rate}
    )
    return result.candidate or ""


def update_dejavu_kfp(registry_url: str, games_uri: str, as_of: str, metrics: MetricsSink) -> str:
    if not games_uri:
        return ""
    finished = load_margins(Path(games_uri), on_error="skip").games
    result = update_dejavu_step(
        Registry.open(registry_url or None), finished, _games(games_uri), resolve_as_of(as_of)
    )
    _log_metrics(metrics, {"games_offered": len(finished)})
    return result.candidate or ""


def retrain_kfp(
    registry_url: str, games_uri: str, as_of: str, force: bool, metrics: MetricsSink
) -> str:
    result = retrain_step(
        Registry.open(registry_url or None), _games(games_uri), resolve_as_of(as_of), force=force
    )
    _log_metrics(metrics, {"retrained": float(result.candidate is not None)})
    return result.candidate or ""


def validate_kfp(
    registry_url: str,
    games_uri: str,
    candidate: str,
    as_of: str,
    report_path: str,
    metrics: MetricsSink,
) -> bool:
    games = holdout_games(_games(games_uri), resolve_as_of(as_of))
    report = validate_step(Registry.open(registry_url or None), "production", candidate, games)
    Path(report_path).write_text(report.to_markdown())
    _log_metrics(
        metrics,
        {
            "games": report.n,
            "dm_p_value": report.dm_p_value,
            "coverage_p_value": report.coverage_p_value,
            "champion_mae": report.metrics["champion"]["mae"],
            "candidate_mae": report.metrics["candidate"]["mae"],
            "persistence_mae": report.metrics["persistence"]["mae"],
            "passed": float(report.passed),
        },
    )
    return report.passed


def register_kfp(registry_url: str, candidate: str, report_path: str) -> str:
    registry = Registry.open(registry_url or None)
    version = registry.resolve(candidate)
    if registry.aliases().get("candidate") != version:
        registry.promote("candidate", version, reason="validated", report=report_path)
    return version


def rollout_kfp(
    registry_url: str,
    candidate: str,
    gitops_repo: str,
    environment: str,
    share: float,
    report_path: str,
) -> str:
    repo = Path(gitops_repo) if gitops_repo else Settings().home.expanduser() / "gitops"
    report = Path(report_path).read_text() if Path(report_path).exists() else ""
    state = start_rollout(
        Registry.open(registry_url or None),
        candidate,
        repo,
        env=environment,
        share=share,
        report=report,
    )
    return json.dumps(
        {"champion": state.champion, "challenger": state.challenger, "share": state.share_b}
    )


def monitor_kfp(
    database_url: str, as_of: str, window_days: float, prometheus_path: str, metrics: MetricsSink
) -> int:
    report = monitor(
        PredictionLog.open(database_url or None), resolve_as_of(as_of), window_days=window_days
    )
    Path(prometheus_path).write_text(report.prometheus())
    _log_metrics(metrics, {"alerts": len(report.alerts), "unlabelled": report.unlabelled})
    return len(report.alerts)
