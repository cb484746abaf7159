"""Writes across a real database outage: nothing lost, nothing stored twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord
from nba_forecast.storage.spool import SpoolingPredictionLog
from nba_forecast.storage.tables import predictions
from tests.plugins.servers import TcpProxy

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def batch(start: int, size: int) -> list[PredictionRecord]:
    return [
        PredictionRecord(f"g{i:05d}", T0 + dt.timedelta(minutes=i), "v1", "A", 1.0, -10.0, 12.0)
        for i in range(start, start + size)
    ]


def outcomes(start: int, size: int) -> list[OutcomeRecord]:
    return [
        OutcomeRecord(f"g{i:05d}", float(i % 9), T0 + dt.timedelta(days=1))
        for i in range(start, start + size)
    ]


@pytest.mark.postgres
def test_outage_mid_stream_loses_and_duplicates_nothing(pg_schema_url: str, tmp_path: Path) -> None:
    parsed = urlparse(pg_schema_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432).start()
    through_proxy = pg_schema_url.replace(f":{parsed.port or 5432}/", f":{proxy.port}/", 1)
    PredictionLog(pg_schema_url).migrate().engine.dispose()
    log = PredictionLog(through_proxy, connect_args={"connect_timeout": 2})
    spooling = SpoolingPredictionLog(log, tmp_path / "spool.jsonl")
    states = []
    try:
        for step in range(30):
            if step == 8:
                proxy.cut()  # the database vanishes mid-stream
            if step == 20:
                proxy.restore()
            states.append(spooling.record_predictions(batch(step * 50, 50)))
            if step % 3 == 2:  # outcomes of the batch before, also through the outage
                states.append(spooling.record_outcomes(outcomes((step - 1) * 50, 50)))
        assert "spooled" in states and states[-1] == "stored"
        assert spooling.pending() == 0
    finally:
        proxy.close()
        log.engine.dispose()
    direct = PredictionLog(pg_schema_url)
    with direct.engine.connect() as connection:
        distinct = connection.scalar(select(func.count(func.distinct(predictions.c.game_id))))
    assert direct.counts() == {"predictions": 1500, "outcomes": 500}
    assert distinct == 1500
    direct.engine.dispose()


def test_replay_after_a_crash_between_commit_and_clearing_stores_once(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    spooling = SpoolingPredictionLog(log, tmp_path / "spool.jsonl")
    records = batch(0, 40)
    spooling._append(spooling.spool_path, records)  # spooled during an outage
    assert spooling.pending() == 40
    assert spooling.flush() == 40
    # the process died after the commit but before the spool was cleared: replay again
    spooling._append(spooling.flushing_path, records)
    assert spooling.flush() == 40
    assert log.counts()["predictions"] == 40 and spooling.pending() == 0


def test_rejected_replays_are_kept_not_dropped(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    spooling = SpoolingPredictionLog(log, tmp_path / "spool.jsonl")
    spooling._append(spooling.spool_path, [*batch(0, 2), OutcomeRecord("unknown", 1.0, T0)])
    assert spooling.flush() == 3
    assert log.counts()["predictions"] == 2
    assert "unknown" in spooling.rejected_path.read_text()


def test_bad_records_are_errors_not_spooled(tmp_path: Path) -> None:
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    spooling = SpoolingPredictionLog(log, tmp_path / "spool.jsonl")
    bad = PredictionRecord("g", T0, "v1", "Z", 1.0, 0.0, 2.0)
    with pytest.raises(ValueError, match="arm"):
        spooling.record_predictions([bad])
    assert spooling.pending() == 0
