"""Components called as plain functions (`python_func`), with real artifacts on disk; and
the task-configuration rules every component follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Markdown, Metrics, Model

from components.collect_predictions import collect_predictions
from components.monitor_performance import monitor_performance
from components.record_run import record_run
from components.roll_forward import roll_forward
from nba_forecast.lifecycle.deployment import NotFoundError
from nba_forecast.lifecycle.kfp_adapter import TaskConfigError, model_artifact
from nba_forecast.storage.prediction_log import PredictionLog
from nba_forecast.storage.registry import Registry

SETTINGS = (
    "NBA_FORECAST_DATABASE_URL",
    "NBA_FORECAST_REGISTRY_URL",
    "NBA_FORECAST_GITOPS_REPO",
    "NBA_FORECAST_ENVIRONMENT",
)


def new_log(tmp_path: Path) -> str:
    """A prediction log that exists (a task never creates one: a typo must fail)."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    PredictionLog.open(url).engine.dispose()
    return url


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test gives: as in a task pod without the ConfigMap."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_monitor_performance_writes_its_report_and_counts_alerts(tmp_path: Path) -> None:
    report = Markdown(uri=str(tmp_path / "report.md"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    alerts = monitor_performance.python_func(
        database_url=new_log(tmp_path),
        as_of="2026-01-01T00:00:00Z",
        window_days=7.0,
        report=report,
        metrics=metrics,
    )
    assert alerts == 1  # an empty log: no forecasts ever
    text = (tmp_path / "report.md").read_text()
    assert "**Alerts:** no_forecasts" in text and "| model version |" in text
    assert metrics.metadata["alerts"] == 1.0


def test_collect_predictions_on_an_empty_log(tmp_path: Path) -> None:
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    drifted = collect_predictions.python_func(
        database_url=new_log(tmp_path),
        as_of="{{$.pipeline_job_schedule_time_utc}}",
        window_days=30.0,
        metrics=metrics,
    )
    assert drifted is False
    assert metrics.metadata["rows"] == 0.0


def test_bad_as_of_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bad as_of .yesterday.: expected ISO 8601"):
        collect_predictions.python_func(
            database_url=f"sqlite:///{tmp_path / 'log.db'}",
            as_of="yesterday",
            window_days=1.0,
            metrics=Metrics(uri=str(tmp_path / "m")),
        )


def test_a_task_without_its_configuration_fails_at_once(tmp_path: Path) -> None:
    """A pod without the Secret gets no SQLite file under its home, but a clear error."""
    with pytest.raises(TaskConfigError, match=r"no database_url .*NBA_FORECAST_DATABASE_URL"):
        collect_predictions.python_func(
            database_url="", as_of="", window_days=1.0, metrics=Metrics(uri=str(tmp_path / "m"))
        )
    assert not list(tmp_path.iterdir())


def test_the_environment_configures_a_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBA_FORECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    metrics = Metrics(uri=str(tmp_path / "m"))
    with pytest.raises(NotFoundError, match=r"no database at .*log\.db"):  # read, not made
        collect_predictions.python_func(database_url="", as_of="", window_days=1.0, metrics=metrics)
    assert not (tmp_path / "log.db").exists()
    new_log(tmp_path)
    collect_predictions.python_func(database_url="", as_of="", window_days=1.0, metrics=metrics)
    assert metrics.metadata["rows"] == 0.0


def registered(tmp_path: Path) -> tuple[str, str]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.json").write_text("{}")
    url = (tmp_path / "registry").as_uri()
    return url, Registry.open(url).register(model, data_window={"trained_to": "2015-04-15"}).version


def test_a_model_artifact_names_its_registry_version_and_code(tmp_path: Path) -> None:
    url, version = registered(tmp_path)
    content, metadata = model_artifact(version, url)
    assert json.loads(content)["version"] == version
    assert metadata["registry_url"] == url and metadata["version"] == version
    assert metadata["data_trained_to"] == "2015-04-15"
    assert metadata["git_sha"]  # the checkout's commit here; the image's in a container
    assert model_artifact(None, url) == ("{}", {"registry_url": url, "version": ""})


def test_a_model_artifact_without_a_version_is_a_clear_error(tmp_path: Path) -> None:
    empty = Model(uri=str(tmp_path / "model"))
    empty.metadata.update({"registry_url": "file:///x", "version": ""})
    with pytest.raises(TaskConfigError, match="names no registered version"):
        roll_forward.python_func(model=empty, gitops_repo="", environment="", as_of="")


def test_the_exit_handler_records_the_run(tmp_path: Path) -> None:
    from kfp.dsl import PipelineTaskFinalStatus

    url = (tmp_path / "registry").as_uri()
    status = PipelineTaskFinalStatus(
        state="FAILED",
        pipeline_job_resource_name="projects/p/pipelineJobs/run-1",
        pipeline_task_name="retrain-lstm",
        error_code=1,
        error_message="out of memory",
    )
    metrics = Metrics(uri=str(tmp_path / "m"))
    state = record_run.python_func(
        registry_url=url,
        pipeline="retrain",
        run_id="run-1",
        run_name="retrain-2026",
        status=status,
        metrics=metrics,
    )
    assert state == "FAILED" and metrics.metadata["run_failed"] == 1.0
    record = json.loads((tmp_path / "registry" / "runs" / "retrain" / "run-1.json").read_text())
    assert record["failed_task"] == "retrain-lstm" and record["error"] == "out of memory"
    assert record["git_sha"] and "image" in record
