"""Lifecycle steps on real games: validate, recalibrate, monitor, collect."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.pregame import pregame_features
from nba_forecast.lifecycle.collect import collect
from nba_forecast.lifecycle.context import Context, GameSource
from nba_forecast.lifecycle.gitops import GitOpsTarget
from nba_forecast.lifecycle.monitor import AlertRules, monitor_report
from nba_forecast.lifecycle.recalibrate import coverage_drift, recalibrate
from nba_forecast.lifecycle.validate import ValidationConfig, validate
from nba_forecast.models.baselines import DampedPersistence, LinearForecaster
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix
from nba_forecast.models.lstm import LSTMForecaster
from nba_forecast.storage.object_store import FileStore
from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord
from nba_forecast.storage.registry import Registry

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def seasons(shipped_games: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    games = shipped_games[shipped_games["season"].between(2008, 2013)].reset_index(drop=True)
    games = pd.concat([games, pregame_features(games)], axis=1)
    parts = {
        "train": games["season"] <= 2010,
        "validation": games["season"] == 2011,
        "calibration": games["season"] == 2012,
        "test": games["season"] == 2013,
    }
    return {name: design_matrix(games[mask]) for name, mask in parts.items()}


def fitted(components: dict, seasons: dict) -> HalftimeEnsemble:
    ensemble = HalftimeEnsemble(components)
    ensemble.fit(*seasons["train"], *seasons["validation"])
    return ensemble.conformalize(*seasons["calibration"])


@pytest.fixture(scope="module")
def champion(seasons: dict) -> HalftimeEnsemble:
    return fitted({"damped_persistence": DampedPersistence()}, seasons)


def test_a_better_candidate_passes(champion: HalftimeEnsemble, seasons: dict) -> None:
    better = fitted({"linear": LinearForecaster()}, seasons)
    report = validate(champion, better, *seasons["test"])
    assert report.passed, report.reasons
    assert report.metrics["candidate"]["mae"] < report.metrics["champion"]["mae"]
    assert "persistence" in report.metrics


def test_an_untrained_lstm_is_rejected(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    untrained = fitted({"lstm": LSTMForecaster(max_epochs=1, learning_rate=1e-7)}, seasons)
    report = validate(champion, untrained, *seasons["test"])
    assert not report.passed
    assert "not shown to be within the margin" in report.reasons[0]
    json_path, md_path = report.write(tmp_path)
    assert "FAILED" in md_path.read_text() and '"passed": false' in json_path.read_text()


def test_validate_needs_enough_games(champion: HalftimeEnsemble, seasons: dict) -> None:
    X, y = seasons["test"]
    with pytest.raises(ValueError, match="at least 200 games"):
        validate(champion, champion, X[:50], y[:50], ValidationConfig())


def test_an_identical_candidate_is_non_inferior(champion: HalftimeEnsemble, seasons: dict) -> None:
    assert validate(champion, champion, *seasons["test"]).passed


def _serve(
    log: PredictionLog,
    version: str,
    X: np.ndarray,
    y: np.ndarray,
    model: HalftimeEnsemble,
    start: int = 0,
) -> None:
    """Log forecasts and outcomes the way the server would, one game an hour."""
    details = model.predict_details(X)
    predictions, outcomes = [], []
    for i in range(len(y)):
        at = T0 + dt.timedelta(hours=start + i)
        predictions.append(
            PredictionRecord(
                f"g{start + i:06d}",
                at,
                version,
                "A",
                float(details.forecast[i]),
                float(details.lower[i]),
                float(details.upper[i]),
            )
        )
        outcomes.append(
            OutcomeRecord(f"g{start + i:06d}", float(y[i]), at + dt.timedelta(minutes=20))
        )
    log.record_predictions(predictions)
    log.record_outcomes(outcomes)


def deployment(tmp_path: Path, log: PredictionLog | None = None) -> Context:
    """A step context on a local registry, a SQLite log and a GitOps repository."""
    log = log or PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    return Context(
        registry=Registry(FileStore(tmp_path / "registry")),
        games=GameSource.of(pd.DataFrame()),
        gitops=GitOpsTarget(tmp_path / "gitops"),
        state=FileStore(tmp_path / "state"),
        open_log=lambda: log,
    )


def _deployed(champion: HalftimeEnsemble, tmp_path: Path) -> tuple[Context, str]:
    """A deployment with the champion as production, and an empty prediction log."""
    ctx = deployment(tmp_path)
    production = ctx.registry.register(champion.save(tmp_path / "champion")).version
    ctx.registry.promote("production", production, reason="bootstrap")
    return ctx, production


def test_recalibration_restores_coverage_and_is_idempotent(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    ctx, production = _deployed(champion, tmp_path)
    registry = ctx.registry
    X, y = seasons["test"]
    # same paths, but the last 6 minutes swing 60% more than the model was calibrated for
    y_wild = X[:, 18] + (y - X[:, 18]) * 1.6
    _serve(ctx.log, production, X, y_wild, champion)
    as_of = T0 + dt.timedelta(hours=len(y) + 1)
    collected = collect(ctx, as_of, window_days=90)
    before = coverage_drift(collected.report.joined)
    assert before.drifted and before.miss_rate > 0.10 and collected.report.drifted
    result = recalibrate(ctx, as_of, window_days=90)
    assert result.report.drifted and result.version is not None
    assert registry.aliases() == {"production": production, "candidate": result.version}
    again = recalibrate(ctx, as_of, window_days=90)
    assert again.version == result.version  # same inputs, same version
    assert len(registry.history()) == 2  # and no new alias move
    manifest = registry.manifest(result.version)
    assert manifest.parent == production and manifest.recalibrated_to == as_of.isoformat()
    recalibrated = HalftimeEnsemble.load(registry.pull(result.version, tmp_path / "cand"))
    details = recalibrated.predict_details(X[:600])
    covered = ((y_wild[:600] >= details.lower) & (y_wild[:600] <= details.upper)).mean()
    assert covered > 0.93
    np.testing.assert_allclose(details.forecast, champion.predict(X[:600]))  # points unchanged


def test_no_recalibration_without_drift(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    ctx, production = _deployed(champion, tmp_path)
    _serve(ctx.log, production, *seasons["test"], champion)
    result = recalibrate(ctx, T0 + dt.timedelta(days=60), window_days=90)
    assert not result.report.drifted and result.version is None
    assert "candidate" not in ctx.registry.aliases()


def test_monitor_alerts_and_prometheus(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    X, y = seasons["test"]
    _serve(log, "v1", X[:200], y[:200], champion)
    as_of = T0 + dt.timedelta(hours=201)
    healthy = monitor_report(log, as_of, window_days=30)
    assert healthy.alerts == [] and healthy.unlabelled == 0
    # a forecast whose outcome never came, then silence
    log.record_predictions([PredictionRecord("late", as_of, "v1", "A", 0.0, -10.0, 10.0)])
    later = as_of + dt.timedelta(days=3)
    report = monitor_report(log, later, window_days=30, rules=AlertRules(max_mae=1.0))
    rules = {alert.split(":")[0] for alert in report.alerts}
    assert rules == {"mae_above", "no_forecasts", "label_lag"}
    text = report.prometheus()
    assert 'nba_halftime_alert{rule="label_lag"} 1' in text
    assert 'nba_halftime_mae{model_version="v1",arm="A"}' in text
    assert "game" not in text.replace("games", "")  # never a game id label
    for line in text.splitlines():
        assert line.startswith(("# HELP nba_halftime_", "# TYPE nba_halftime_", "nba_halftime_"))


def test_collect_is_repeatable_for_one_as_of(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    ctx = deployment(tmp_path)
    X, y = seasons["test"]
    _serve(ctx.log, "v1", X[:100], y[:100], champion)
    as_of = T0 + dt.timedelta(hours=50)
    first = collect(ctx, as_of, window_days=10).report
    _serve(ctx.log, "v1", X[100:150], y[100:150], champion, start=100)  # later traffic
    second = collect(ctx, as_of, window_days=10).report
    pd.testing.assert_frame_equal(first.joined, second.joined)
    pd.testing.assert_frame_equal(first.metrics, second.metrics)


def test_monitor_says_which_arms_are_below_its_minimum_sample(
    champion: HalftimeEnsemble, seasons: dict, tmp_path: Path
) -> None:
    """29 games with poor coverage: no alert, and the report says why not (issue 16)."""
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    X, y = seasons["test"]
    _serve(log, "v1", X[:29], y[:29] + 40.0, champion)  # every outcome far outside
    report = monitor_report(log, T0 + dt.timedelta(hours=30), window_days=30)
    assert not any(a.startswith(("coverage_below", "mae_above")) for a in report.alerts)
    assert report.not_evaluated == [
        "v1/A has 29 finished game(s), below the minimum of 30 for the MAE and coverage rules"
    ]
    assert "not evaluated: v1/A has 29 finished game(s)" in report.summary()
    assert "**Not evaluated:** v1/A has 29" in report.to_markdown()
    _serve(log, "v1", X[29:30], y[29:30] + 40.0, champion, start=29)
    judged = monitor_report(log, T0 + dt.timedelta(hours=31), window_days=30)
    assert judged.not_evaluated == []
    assert any(a.startswith("coverage_below: v1/A") for a in judged.alerts)
