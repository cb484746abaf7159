"""Components called as plain functions (`python_func`), with real artifacts on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from kfp.dsl import Artifact, Metrics

from components.collect_predictions import collect_predictions
from components.monitor_performance import monitor_performance


def test_monitor_performance_writes_prometheus_and_counts_alerts(tmp_path: Path) -> None:
    prometheus = Artifact(uri=str(tmp_path / "metrics.prom"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    alerts = monitor_performance.python_func(
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
        as_of="2026-01-01T00:00:00Z",
        window_days=7.0,
        prometheus=prometheus,
        metrics=metrics,
    )
    assert alerts == 1  # an empty log: no forecasts ever
    assert 'nba_halftime_alert{rule="no_forecasts"} 1' in (tmp_path / "metrics.prom").read_text()
    assert metrics.metadata["alerts"] == 1.0


def test_collect_predictions_on_an_empty_log(tmp_path: Path) -> None:
    rows = Artifact(uri=str(tmp_path / "rows.parquet"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    drifted = collect_predictions.python_func(
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
        as_of="{{$.pipeline_job_schedule_time_utc}}",
        window_days=30.0,
        rows=rows,
        metrics=metrics,
    )
    assert drifted is False and (tmp_path / "rows.parquet").exists()
    assert metrics.metadata["rows"] == 0.0


def test_bad_as_of_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bad as_of .yesterday.: expected ISO 8601"):
        collect_predictions.python_func(
            database_url=f"sqlite:///{tmp_path / 'log.db'}",
            as_of="yesterday",
            window_days=1.0,
            rows=Artifact(uri=str(tmp_path / "r")),
            metrics=Metrics(uri=str(tmp_path / "m")),
        )
