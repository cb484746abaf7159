"""Writes across a real database outage: nothing lost, nothing stored twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from nba_forecast.storage.prediction_log import OutcomeRecord, PredictionLog, PredictionRecord
from nba_forecast.storage.spool import SpoolFull, SpoolingPredictionLog
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


# -- torn spool lines, counters, a bounded spool (issue 13) ---------------------------------
@pytest.fixture
def log(tmp_path: Path) -> Iterator[PredictionLog]:
    """A real SQLite prediction log in its own directory (which ``outage`` takes away)."""
    (tmp_path / "db").mkdir()
    prediction_log = PredictionLog(f"sqlite:///{tmp_path / 'db' / 'log.db'}").migrate()
    yield prediction_log
    prediction_log.engine.dispose()


@contextlib.contextmanager
def outage(log: PredictionLog) -> Iterator[None]:
    """The SQLite database becomes unreachable: its directory moves away and open
    connections are dropped, so every connection attempt fails (OperationalError)."""
    directory = Path(log.engine.url.database or "").parent
    away = directory.with_name(directory.name + ".away")
    log.engine.dispose()
    directory.rename(away)
    try:
        yield
    finally:
        log.engine.dispose()
        away.rename(directory)


def spool_line(record: PredictionRecord | OutcomeRecord) -> bytes:
    return json.dumps(SpoolingPredictionLog._encode(record)).encode() + b"\n"


def spool_file(path: Path, *parts: bytes | list[PredictionRecord]) -> None:
    """A spool as a crash or a full disk left it: record lines and raw bytes, in order."""
    path.write_bytes(
        b"".join(p if isinstance(p, bytes) else b"".join(map(spool_line, p)) for p in parts)
    )


def test_torn_lines_in_the_middle_and_at_the_tail_are_moved_aside(
    log: PredictionLog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = b"\x00\xff\xfe\x81 binary garbage \xc3"
    half = spool_line(batch(6, 1)[0])[:45]  # the disk filled up mid-line: no newline
    path = tmp_path / "spool.jsonl"
    spool_file(path, batch(0, 3), garbage + b"\n", batch(3, 3), half)
    spooling = SpoolingPredictionLog(log, path)
    assert spooling.pending() == 8  # lines waiting: torn ones are found when replayed
    assert spooling.flush() == 6
    assert log.counts()["predictions"] == 6
    assert spooling.torn_path.read_bytes() == garbage + b"\n" + half + b"\n"  # raw bytes kept
    assert (spooling.torn(), spooling.pending(), spooling.rejected()) == (2, 0, 0)
    assert not path.exists() and not spooling.flushing_path.exists()
    torn_logs = [r.getMessage() for r in caplog.records if "not a record" in r.getMessage()]
    assert len(torn_logs) == 2
    assert "line 4 " in torn_logs[0] and "line 8 " in torn_logs[1]
    assert "cut short" in torn_logs[1]


GOOD = PredictionRecord("g00001", T0, "v1", "A", 1.0, -10.0, 12.0).to_json()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"kind": "forecast", "record": GOOD}, id="wrong-kind"),
        pytest.param({"record": GOOD}, id="no-kind"),
        pytest.param({"kind": "prediction", "record": "g00001"}, id="record-not-an-object"),
        pytest.param(
            {"kind": "prediction", "record": {k: v for k, v in GOOD.items() if k != "arm"}},
            id="missing-field",
        ),
        pytest.param({"kind": "prediction", "record": {**GOOD, "extra": 1}}, id="unknown-field"),
        pytest.param({"kind": "prediction", "record": {**GOOD, "forecast": None}}, id="null"),
        pytest.param({"kind": "prediction", "record": {**GOOD, "lower": "low"}}, id="not-a-number"),
        pytest.param({"kind": "prediction", "record": {**GOOD, "arm": "Z"}}, id="bad-arm"),
        pytest.param(
            {"kind": "prediction", "record": {**GOOD, "predicted_at": "2026-03-01T00:00:00"}},
            id="naive-time",
        ),
        pytest.param({"kind": "outcome", "record": {"game_id": "g00001"}}, id="outcome-fields"),
        pytest.param([1, 2, 3], id="json-list"),
    ],
)
def test_lines_that_are_not_valid_records_are_moved_aside(
    log: PredictionLog, tmp_path: Path, bad: object
) -> None:
    line = json.dumps(bad).encode() + b"\n"
    path = tmp_path / "spool.jsonl"
    spool_file(path, batch(0, 2), line, batch(2, 2))
    spooling = SpoolingPredictionLog(log, path)
    assert spooling.flush() == 4
    assert log.counts()["predictions"] == 4
    assert spooling.torn_path.read_bytes() == line
    assert (spooling.torn(), spooling.pending(), spooling.rejected()) == (1, 0, 0)


def test_writes_after_a_torn_line_are_stored(log: PredictionLog, tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool_file(path, batch(0, 2), b'{"kind": "predic\n', batch(2, 2))
    spooling = SpoolingPredictionLog(log, path)
    assert spooling.record_predictions(batch(10, 5)) == "stored"
    assert spooling.record_outcomes(outcomes(10, 5)) == "stored"
    assert log.counts() == {"predictions": 9, "outcomes": 5}
    assert (spooling.torn(), spooling.pending()) == (1, 0)


def test_writes_after_a_torn_line_are_spooled_in_an_outage_and_replayed_once(
    log: PredictionLog, tmp_path: Path
) -> None:
    path = tmp_path / "spool.jsonl"
    half = spool_line(batch(3, 1)[0])[:30]
    spool_file(path, batch(0, 3), half)  # a crash mid-write, then a restart
    spooling = SpoolingPredictionLog(log, path)
    with outage(log):
        assert spooling.record_predictions(batch(3, 2)) == "spooled"
        assert spooling.record_outcomes(outcomes(0, 2)) == "spooled"
        assert spooling.record_predictions(batch(5, 2)) == "spooled"
        # the torn line was moved aside once, though every replay attempt failed
        assert spooling.torn() == 1 and spooling.torn_path.read_bytes() == half + b"\n"
        assert spooling.pending() == 9
        assert log.engine.url.database and not Path(log.engine.url.database).exists()
    assert spooling.record_outcomes(outcomes(2, 5)) == "stored"
    assert log.counts() == {"predictions": 7, "outcomes": 7}
    assert (spooling.torn(), spooling.pending(), spooling.rejected()) == (1, 0, 0)
    assert spooling.flush() == 0 and log.counts() == {"predictions": 7, "outcomes": 7}


def test_records_appended_after_a_torn_tail_start_on_a_new_line(
    log: PredictionLog, tmp_path: Path
) -> None:
    path = tmp_path / "spool.jsonl"
    half = spool_line(batch(0, 1)[0])[:52]
    spool_file(path, half)
    spooling = SpoolingPredictionLog(log, path)
    spooling._append(path, batch(1, 2))  # spooled during an outage, after the crash
    assert path.read_bytes().split(b"\n")[:2] == [half, spool_line(batch(1, 1)[0]).strip()]
    assert spooling.flush() == 2
    assert log.counts()["predictions"] == 2
    assert spooling.torn_path.read_bytes() == half + b"\n"
    assert spooling.torn() == 1


def test_counts_are_kept_in_step_and_read_no_file(
    log: PredictionLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spool.jsonl"
    spool_file(path, batch(0, 2), b"\xff\xfe\n")
    spooling = SpoolingPredictionLog(log, path)
    spooling._append(path, [OutcomeRecord("unknown", 1.0, T0), *outcomes(0, 1)])
    assert spooling.pending() == 5
    assert spooling.flush() == 4
    assert (spooling.pending(), spooling.torn(), spooling.rejected()) == (0, 1, 1)
    with outage(log):
        spooling.record_predictions(batch(10, 3))
        spooling.record_outcomes(outcomes(10, 1))
    assert (spooling.pending(), spooling.torn(), spooling.rejected()) == (4, 1, 1)
    # a restart counts the files once; the counters are then read without touching a file
    restarted = SpoolingPredictionLog(log, path)

    def no_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("a counter read a file")

    with monkeypatch.context() as patched:
        for name in ("builtins.open", "io.open", "os.open", "os.stat"):
            patched.setattr(name, no_file)
        counts = (restarted.pending(), restarted.torn(), restarted.rejected())
    assert counts == (4, 1, 1)
    assert restarted.flush() == 4
    assert (restarted.pending(), restarted.torn(), restarted.rejected()) == (0, 1, 1)
    assert log.counts() == {"predictions": 5, "outcomes": 2}


def test_a_full_spool_raises_spool_full_and_drops_nothing(
    log: PredictionLog, tmp_path: Path
) -> None:
    line = len(spool_line(batch(0, 1)[0]))
    path = tmp_path / "spool.jsonl"
    spooling = SpoolingPredictionLog(log, path, max_bytes=10 * line + line // 2)
    with outage(log):
        for step in range(5):
            assert spooling.record_predictions(batch(2 * step, 2)) == "spooled"
        with pytest.raises(SpoolFull, match="is full") as refused:
            spooling.record_predictions(batch(10, 2))
        assert isinstance(refused.value, OSError) and refused.value.errno == errno.ENOSPC
        assert str(path) in str(refused.value)
        assert spooling.pending() == 10 and path.stat().st_size <= spooling.max_bytes
    assert spooling.flush() == 10
    assert spooling.record_predictions(batch(10, 2)) == "stored"  # the caller retried
    assert log.counts()["predictions"] == 12 and spooling.pending() == 0


@pytest.mark.postgres
def test_a_torn_line_does_not_block_writes_through_a_postgres_outage(
    pg_schema_url: str, tmp_path: Path
) -> None:
    parsed = urlparse(pg_schema_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432).start()
    through_proxy = pg_schema_url.replace(f":{parsed.port or 5432}/", f":{proxy.port}/", 1)
    PredictionLog(pg_schema_url).migrate().engine.dispose()
    log = PredictionLog(through_proxy, connect_args={"connect_timeout": 2})
    path = tmp_path / "spool.jsonl"
    spool_file(path, batch(0, 10), b"\x00" * 20 + b"\n", batch(10, 10), b'{"kind":')
    spooling = SpoolingPredictionLog(log, path)
    try:
        proxy.cut()
        assert spooling.record_predictions(batch(20, 10)) == "spooled"
        proxy.restore()
        assert spooling.record_predictions(batch(30, 10)) == "stored"
        assert (spooling.pending(), spooling.torn()) == (0, 2)
    finally:
        proxy.close()
        log.engine.dispose()
    direct = PredictionLog(pg_schema_url)
    assert direct.counts() == {"predictions": 40, "outcomes": 0}
    direct.engine.dispose()


def test_a_spooled_forecast_that_lost_to_another_replica_is_kept_and_counted(
    tmp_path: Path,
) -> None:
    """During an outage this replica spooled a forecast for a game another replica logged,
    from other inputs: the replay keeps one served forecast per game and puts the loser in
    .rejected, never silently away."""
    import datetime as dt

    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}").migrate()
    spooling = SpoolingPredictionLog(log, tmp_path / "spool.jsonl")
    now = dt.datetime.now(dt.UTC)

    def forecast(inputs: str, at: dt.datetime) -> PredictionRecord:
        return PredictionRecord("g1", at, "v1", "A", 1.0, -9.0, 11.0, inputs=inputs)

    spooling.spool([forecast("mine", now)])  # what this replica answered while cut off
    log.record_forecasts([[forecast("theirs", now + dt.timedelta(seconds=1))]])
    spooling.flush()
    assert spooling.rejected() == 1 and spooling.pending() == 0
    kept = (tmp_path / "spool.jsonl.rejected").read_text()
    assert '"inputs": "mine"' in kept
