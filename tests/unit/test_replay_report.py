"""The replay's report on a made-up two-season run: per-season and whole-run scores, the
step counts, conditional coverage, the events, the figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.lifecycle.context import StepResult
from nba_forecast.replay.driver import ReplayResult, conditional_coverage, period_table
from nba_forecast.replay.report import write_replay_report


def result(mode: str, width: np.ndarray | float, seed: int) -> ReplayResult:
    rng = np.random.default_rng(seed)
    dates = pd.to_datetime(["2013-11-01"] * 300 + ["2014-11-01"] * 300)
    actual = rng.normal(0, 8, 600).round()
    forecast = actual + rng.normal(0, 5, 600)
    half = np.broadcast_to(np.asarray(width, dtype=float) / 2, (600,))
    predictions = pd.DataFrame(
        {
            "game_id": [f"g{i}" for i in range(600)],
            "date": dates,
            "season": [2013] * 300 + [2014] * 300,
            "actual": actual,
            "m_18": actual + rng.normal(0, 4, 600),
            "forecast": forecast,
            "lower": forecast - half,
            "upper": forecast + half,
        }
    )
    return ReplayResult(mode, predictions)


def test_scores_by_season_month_and_run() -> None:
    frozen, continuous = result("frozen", 20.0, 1), result("continuous", 20.0, 2)
    table = period_table(frozen, continuous)
    whole = table[(table["season"] == "all") & (table["mode"] == "frozen")].iloc[0]
    p = frozen.predictions
    assert whole["games"] == 600
    assert whole["mae"] == (p["forecast"] - p["actual"]).abs().mean()
    assert whole["width"] == 20.0 and whole["winkler"] >= 20.0
    seasons = table[(table["month"] == "all") & (table["season"] != "all")]
    assert sorted(seasons["season"].unique()) == [2013, 2014]
    assert set(seasons["games"]) == {300}


def test_conditional_coverage_buckets() -> None:
    varying = result("continuous", np.linspace(10, 30, 600), 3)
    by = conditional_coverage(varying)
    assert [b["bucket"] for b in by["width"]] == [1, 2, 3, 4, 5]
    assert sum(b["games"] for b in by["width"]) == 600
    widths = [b["width"] for b in by["width"]]
    assert widths == sorted(widths)  # quintiles of width, narrowest first
    covered = [b["coverage"] for b in by["width"]]
    assert covered[0] < covered[-1]  # a 10-point interval covers less than a 30-point one
    assert len(by["abs_m18"]) == 5
    constant = conditional_coverage(result("frozen", 20.0, 4))
    assert len(constant["width"]) == 1 and constant["width"][0]["games"] == 600


def test_the_report_files(tmp_path: Path) -> None:
    frozen, continuous = result("frozen", 20.0, 5), result("continuous", 21.0, 6)
    continuous.events = [
        {"date": "2013-12-01", "kind": "retrain", "version": "v2", "detail": "retrained"},
        {"date": "2013-12-01", "kind": "refresh", "version": "v3", "detail": "data refresh"},
        {"date": "2014-01-01", "kind": "promote", "version": "v2", "detail": "A/B promote"},
    ]
    continuous.tally(StepResult("retrain", "retrained"))
    continuous.tally(StepResult("retrain", "not due: 3 days", status="not_due"))
    continuous.tally(StepResult("update_dejavu", "skipped", status="blocked"))
    path = write_replay_report(frozen, continuous, tmp_path, "Two seasons")
    text = path.read_text()
    for section in ("## By season", "## Coverage by quintile", "## Lifecycle steps"):
        assert section in text
    assert "| retrain | 1 | 1 | 0 | 1 |" in text and "| update_dejavu | 1 | 0 | 1 | 0 |" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seasons"] == [2013, 2014]
    assert set(summary["metrics"]["continuous"]) == {"2013", "2014", "all"}
    assert summary["events"]["promote"] == 1 and summary["events"]["refresh"] == 1
    assert summary["conditional_coverage"]["continuous"]["width"][0]["games"] == 600
    assert json.loads((tmp_path / "events.json").read_text()) == continuous.events
    assert (tmp_path / "replay.png").read_bytes()[:4] == b"\x89PNG"
