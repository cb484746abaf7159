"""The prediction log on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from nba_forecast.evaluation.metrics import forecast_metrics
from nba_forecast.storage.prediction_log import (
    ConflictingOutcome,
    InvalidRecord,
    OutcomeRecord,
    PredictionLog,
    PredictionRecord,
    UnknownGame,
)
from nba_forecast.storage.tables import metadata

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> PredictionLog:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    prediction_log = PredictionLog(url).migrate()
    yield prediction_log
    prediction_log.engine.dispose()


def prediction(i: int, **changes: object) -> PredictionRecord:
    values: dict[str, object] = dict(
        game_id=f"g{i:05d}",
        predicted_at=T0 + dt.timedelta(hours=i),
        model_version="v1",
        arm="A",
        forecast=float(i % 7),
        lower=float(i % 7) - 11,
        upper=float(i % 7) + 11,
        components={"lstm": 1.5},
        latency_ms=2.0,
    )
    values.update(changes)
    return PredictionRecord(**values)  # type: ignore[arg-type]


def outcome(i: int, actual: float, hours: int = 1) -> OutcomeRecord:
    return OutcomeRecord(f"g{i:05d}", actual, T0 + dt.timedelta(hours=i + hours))


def test_migrations_match_the_tables_and_are_idempotent(log: PredictionLog) -> None:
    log.migrate()
    with log.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_writes_are_idempotent(log: PredictionLog) -> None:
    records = [prediction(i) for i in range(20)]
    log.record_predictions(records)
    log.record_predictions(records)
    assert log.counts()["predictions"] == 20
    log.record_predictions([prediction(0, arm="shadow", model_version="v2")])
    log.record_outcomes([outcome(i, 3.0) for i in range(5)])
    log.record_outcomes([outcome(i, 3.0) for i in range(5)])  # same value: a no-op
    assert log.counts() == {"predictions": 21, "outcomes": 5}


def test_bad_outcomes_store_nothing(log: PredictionLog) -> None:
    log.record_predictions([prediction(i) for i in range(3)])
    log.record_outcomes([outcome(0, 1.0)])
    with pytest.raises(UnknownGame, match="g99999"):
        log.record_outcomes([outcome(1, 2.0), OutcomeRecord("g99999", 1.0, T0)])
    with pytest.raises(ConflictingOutcome, match="differs from the stored"):
        log.record_outcomes([outcome(2, 2.0), outcome(0, 5.0)])
    with pytest.raises(ConflictingOutcome, match="two different outcomes"):
        log.record_outcomes([outcome(1, 2.0), outcome(1, 3.0)])
    with pytest.raises(InvalidRecord, match="finite"):
        log.record_outcomes([outcome(1, 2.0), outcome(2, float("nan"))])
    assert log.counts() == {"predictions": 3, "outcomes": 1}  # none of those batches landed


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"forecast": float("nan")}, "finite"),
        ({"upper": float("inf")}, "finite"),
        ({"arm": "C"}, "arm"),
        ({"lower": 50.0}, "lower"),
        ({"alpha": 1.5}, "alpha"),
        ({"predicted_at": dt.datetime(2026, 1, 1)}, "time zone"),
        ({"game_id": ""}, "game_id"),
        ({"as_of_minute": 60}, "as_of_minute"),
        ({"components": {"x": float("nan")}}, "component"),
    ],
)
def test_bad_predictions_store_nothing(log: PredictionLog, changes: dict, message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        log.record_predictions([prediction(1), prediction(2, **changes)])
    assert log.counts()["predictions"] == 0


def test_window_metrics_match_numpy_and_respect_as_of(log: PredictionLog) -> None:
    rng = np.random.default_rng(0)
    n = 300
    records = [
        prediction(i, model_version=f"v{i % 2}", arm="A" if i % 3 else "shadow") for i in range(n)
    ]
    actuals = rng.normal(0, 8, n).round()
    log.record_predictions(records)
    log.record_outcomes([outcome(i, float(actuals[i]), hours=2) for i in range(n)])
    start, as_of = T0 + dt.timedelta(hours=50), T0 + dt.timedelta(hours=250)
    metrics = log.window_metrics(start, as_of)
    joined = log.joined(start, as_of)
    # predictions from hour 50 up to 249; the last one's outcome (hour 251) comes too late
    assert len(joined) == 199 and metrics["n"].sum() == 199
    for row in metrics.itertuples(index=False):
        part = joined[(joined["model_version"] == row.model_version) & (joined["arm"] == row.arm)]
        expected = forecast_metrics(part["actual"], part["forecast"], part["lower"], part["upper"])
        assert row.n == expected.n
        for name in ("mae", "rmse", "bias", "coverage", "mean_width", "winkler"):
            assert getattr(row, name) == pytest.approx(getattr(expected, name)), name
    with pytest.raises(ValueError, match="empty window"):
        log.window_metrics(as_of, start)
    assert log.window_metrics(T0 - dt.timedelta(days=9), T0 - dt.timedelta(days=8)).empty


def test_a_database_that_never_answers_fails_the_connection_in_seconds() -> None:
    """A server that accepts connections and stays silent (a stalled database) gives an
    error after the connect timeout, not a task that hangs for good."""
    import socket
    import threading

    from sqlalchemy.exc import OperationalError

    from nba_forecast.storage.prediction_log import CONNECT_TIMEOUT_S, PredictionLog

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            PredictionLog.open(f"postgresql://postgres@127.0.0.1:{port}/test")
        except BaseException as error:
            outcome.append(error)

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    # a hang guard, not a timing: without a connect timeout the attempt never returns
    attempt.join(CONNECT_TIMEOUT_S * 12)
    listener.close()
    for connection in held:
        connection.close()
    assert not attempt.is_alive(), "the connection attempt hung on a silent server"
    assert outcome and isinstance(outcome[0], OperationalError)


def old_log_serving_one_game_twice(path: Path) -> PredictionLog:
    """A log at revision 0001 in which game g1 has two served forecasts (two versions)."""
    from sqlalchemy import text

    log = PredictionLog(f"sqlite:///{path}").migrate("0001")
    insert = text(
        "INSERT INTO predictions (game_id, predicted_at, as_of_minute, model_version, arm,"
        " forecast, lower, upper, alpha, components, latency_ms) VALUES ('g1',"
        " '2025-01-01 00:00:00', 18, :version, 'A', 1, 0, 2, 0.05, '{}', 0)"
    )
    with log.engine.begin() as connection:
        for version in ("v1", "v2"):
            connection.execute(insert, {"version": version})
    return log


def test_upgrading_a_log_with_two_served_forecasts_for_one_game_says_what_to_fix(
    tmp_path: Path,
) -> None:
    """Revision 0002 enforces one served forecast per game; a log that breaks it is not
    half-upgraded but refused with what to do."""
    from sqlalchemy import text

    log = old_log_serving_one_game_twice(tmp_path / "old.db")
    with pytest.raises(RuntimeError, match="more than one served forecast"):
        log.migrate()
    with log.engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0001"
    log.engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_log_with_rows_upgrades_to_interval_scales(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Rows written at revision 0002 keep their values and read back with no scale (1 for the
    online update); new rows carry theirs."""
    from sqlalchemy import text

    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    log = PredictionLog(url).migrate("0002")
    insert = text(
        "INSERT INTO predictions (game_id, predicted_at, as_of_minute, model_version, arm,"
        " forecast, lower, upper, alpha, components, latency_ms) VALUES ('g1',"
        " '2025-01-01 00:00:00', 18, 'v1', 'A', 1, -9, 11, 0.05, '{}', 0)"
    )
    with log.engine.begin() as connection:
        connection.execute(insert)
    log.migrate()
    log.record_predictions([prediction(2, scale=1.25)])
    log.record_outcomes([OutcomeRecord("g1", 3.0, T0), OutcomeRecord("g00002", 1.0, T0)])
    joined = log.joined(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), T0 + dt.timedelta(days=400))
    scales = dict(zip(joined["game_id"], joined["scale"], strict=True))
    assert scales["g1"] is None or np.isnan(scales["g1"])
    assert scales["g00002"] == 1.25
    assert joined.loc[joined["game_id"] == "g1", "forecast"].item() == 1
    log.engine.dispose()
