"""Writes that survive a database outage.

``SpoolingPredictionLog`` writes through to the prediction log; when the database cannot be
reached, records are appended (and fsynced) to a local JSON-lines spool file instead, and
replayed in order before the next write or on ``flush()``. Replays are idempotent (unique
keys in the log), so a crash between committing a replay and clearing the spool cannot store
a record twice: each record is stored exactly once. A replayed record the log rejects (e.g. an
outcome for a game it never saw) goes to a ``.rejected`` file, never silently away.

A spool line that does not decode into a record (one torn by a full disk or a crash
mid-write, garbage) is moved, raw bytes kept, to a ``.torn`` file and the other records are
replayed: one bad line never blocks the log. The spool (spool file plus the file being
replayed) is bounded by ``max_bytes`` (256 MiB by default); a write that would take it past
that raises ``SpoolFull`` instead of filling the disk, so no record is dropped silently.
``pending()``, ``torn()`` and ``rejected()`` are counters, cheap enough for every metrics
scrape: counted from the files once at start, then kept in step with every write.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from nba_forecast.storage.prediction_log import (
    InvalidRecord,
    OutcomeRecord,
    PredictionLog,
    PredictionRecord,
    same_forecast,
)

logger = logging.getLogger(__name__)

Record = PredictionRecord | OutcomeRecord
KINDS: dict[str, type[PredictionRecord] | type[OutcomeRecord]] = {
    "prediction": PredictionRecord,
    "outcome": OutcomeRecord,
}
DEFAULT_MAX_BYTES = 256 * 2**20
LOGGED_TORN = 10  # torn lines logged one by one per replay; the rest in one summary line
REASON_CHARS = 200


class SpoolFull(OSError):
    """The spool reached ``max_bytes``: the records were neither stored nor spooled."""


def database_unavailable(error: Exception) -> bool:
    """Connection-level failures (spool and retry), as opposed to bad data (raise)."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class SpoolingPredictionLog:
    """The prediction log, with a local spool for when its database is unreachable.

    Files next to ``spool_path``: ``.flushing`` (the spool being replayed), ``.rejected``
    (replayed records the log refused) and ``.torn`` (spool lines that were not records).
    ``max_bytes`` bounds the spool and ``.flushing`` files together.
    """

    def __init__(
        self,
        log: PredictionLog,
        spool_path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry_after_s: float = 0.0,
    ) -> None:
        """``retry_after_s``: after a failed write, later writes go straight to the spool
        for that long (the server: requests do not each wait on a dead database)."""
        if max_bytes <= 0:
            raise ValueError(f"max_bytes is {max_bytes}; expected a positive number of bytes")
        self.log = log
        self.spool_path = spool_path
        self.flushing_path = spool_path.with_name(spool_path.name + ".flushing")
        self.rejected_path = spool_path.with_name(spool_path.name + ".rejected")
        self.torn_path = spool_path.with_name(spool_path.name + ".torn")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one writer or replay at a time
        # appends and the move aside: never held across a database call, so a request can
        # spool its records while a write is stuck on a stalled database
        self._file_lock = threading.RLock()
        self.retry_after_s = retry_after_s
        self._down_until = 0.0  # after a failure, write to the spool until then
        # counted once here, then kept in step by _append / _flush (under the lock)
        self._pending = self._count(self.flushing_path) + self._count(self.spool_path)
        self._rejected = self._count(self.rejected_path)
        self._torn = self._count(self.torn_path)

    # -- public --------------------------------------------------------------------------
    def record_predictions(self, records: Sequence[PredictionRecord]) -> str:
        return self._write(list(records))

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> str:
        return self._write(list(records))

    # The counters are read without the lock (an int read is atomic): a metrics scrape must
    # not wait behind a write that is stuck connecting to an unreachable database.
    def pending(self) -> int:
        """Lines waiting in the spool (a torn one counts until a replay moves it aside)."""
        return self._pending

    def torn(self) -> int:
        """Spool lines that were not records, moved to the ``.torn`` file so far."""
        return self._torn

    def rejected(self) -> int:
        """Replayed records the log refused, kept in the ``.rejected`` file."""
        return self._rejected

    def write_forecasts(
        self, requests: Sequence[Sequence[PredictionRecord]]
    ) -> list[PredictionRecord | None]:
        """``PredictionLog.record_forecasts`` for a batch of requests, spooled (None per
        request) while the database is unavailable."""
        for records in requests:
            for record in records:
                record.row()
        with self._lock:
            # the spool is replayed by ``replay`` when the writer is idle, not before each
            # batch: under load a replay ahead of every batch would make it slower still
            if time.monotonic() >= self._down_until:
                try:
                    return list(self.log.record_forecasts(requests))
                except Exception as error:
                    if not database_unavailable(error):
                        raise
                    self._mark_down(error, sum(len(r) for r in requests))
            self._append(self.spool_path, [r for records in requests for r in records])
            return [None] * len(requests)

    def replay(self) -> int:
        """Replay the spool now unless the database failed within ``retry_after_s``;
        returns how many records were replayed (0 while it is still down)."""
        if self._pending == 0:
            return 0
        with self._lock:
            if time.monotonic() < self._down_until:
                return 0
            try:
                return self._flush()
            except Exception as error:
                if not database_unavailable(error):
                    raise
                self._mark_down(error, 0)
                return 0

    def spool(self, records: Sequence[Record]) -> None:
        """Append records to the spool now, without touching the database (a request that
        cannot wait for a stalled write); replays store each record once."""
        self._append(self.spool_path, list(records))

    def _mark_down(self, error: Exception, count: int) -> None:
        self._down_until = time.monotonic() + self.retry_after_s
        logger.warning(
            "prediction log unreachable (%s); spooling %d record(s)",
            type(error).__name__,
            count,
        )

    def flush(self) -> int:
        """Replay the spool into the database; returns how many records were replayed
        (torn lines are not records and are not counted). Raises the database's error if it
        is still unavailable (the spool is kept)."""
        with self._lock:
            return self._flush()

    # -- internals -----------------------------------------------------------------------
    def _write(self, records: list[Record]) -> str:
        """'stored' or 'spooled'. Invalid records raise before anything is written; a full
        spool raises ``SpoolFull``."""
        for record in records:
            record.row()  # validate up front: bad data is an error, not an outage
        with self._lock:
            if time.monotonic() >= self._down_until:
                try:
                    self._flush()
                    self._store(records)
                    return "stored"
                except Exception as error:
                    if not database_unavailable(error):
                        raise
                    self._mark_down(error, len(records))
            self._append(self.spool_path, records)
            return "spooled"

    def _store(self, records: list[Record]) -> None:
        """Write in order, grouping runs of one kind into one batch."""
        start = 0
        while start < len(records):
            kind = type(records[start])
            end = start
            while end < len(records) and type(records[end]) is kind:
                end += 1
            batch = records[start:end]
            if kind is PredictionRecord:
                self.log.record_predictions(batch)  # type: ignore[arg-type]
            else:
                self.log.record_outcomes(batch)  # type: ignore[arg-type]
            start = end

    def _append(self, path: Path, records: list[Record]) -> None:
        """Append records as JSON lines and fsync; the spool files are bounded (SpoolFull)."""
        with self._file_lock:
            self._append_locked(path, records)

    def _append_locked(self, path: Path, records: list[Record]) -> None:
        data = "".join(json.dumps(self._encode(r)) + "\n" for r in records).encode()
        if self._torn_tail(path):
            data = b"\n" + data  # end the torn last line first: it stays one torn line
        spool = path in (self.spool_path, self.flushing_path)
        if spool:
            self._check_room(len(data), len(records))
        self._append_bytes(path, data)
        if spool:
            self._pending += len(records)
        elif path == self.rejected_path:
            self._rejected += len(records)

    def _check_room(self, size: int, count: int) -> None:
        used = self._size(self.spool_path) + self._size(self.flushing_path)
        if used + size > self.max_bytes:
            message = (
                f"spool {self.spool_path} is full ({used} of max_bytes={self.max_bytes} bytes "
                f"used, {size} more needed): {count} record(s) neither stored nor spooled. "
                "The prediction log has been unreachable for long; restore it (the spool is "
                "replayed on the next write or flush) or give the spool a larger max_bytes"
            )
            logger.error(message)
            raise SpoolFull(errno.ENOSPC, message)

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    @staticmethod
    def _torn_tail(path: Path) -> bool:
        """Whether the file's last byte is not a newline (a write cut short)."""
        try:
            with open(path, "rb") as handle:
                if handle.seek(0, os.SEEK_END) == 0:
                    return False
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        except FileNotFoundError:
            return False

    @staticmethod
    def _append_bytes(path: Path, data: bytes, flags: int = os.O_APPEND) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
        try:
            view = memoryview(data)
            while view:  # a short write (disk full) is followed by an error, not ignored
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _encode(record: Record) -> dict[str, Any]:
        kind = "prediction" if isinstance(record, PredictionRecord) else "outcome"
        return {"kind": kind, "record": record.to_json()}

    @staticmethod
    def _decode(line: str | bytes) -> Record:
        """The valid record on a spool line; ValueError saying why if the line is not one."""
        try:
            data = json.loads(line)
        except Exception as error:  # bad UTF-8, bad JSON, absurd nesting
            raise ValueError(f"not JSON: {error}"[:REASON_CHARS]) from error
        if (
            not isinstance(data, dict)
            or data.get("kind") not in KINDS
            or not isinstance(data.get("record"), dict)
        ):
            raise ValueError('not a spooled record: expected {"kind": ..., "record": {...}}')
        try:
            record = KINDS[data["kind"]].from_json(data["record"])
            record.row()  # a field the log could not store would block every replay
        except Exception as error:
            reason = f"invalid {data['kind']}: {type(error).__name__}: {error}"
            raise ValueError(reason[:REASON_CHARS]) from error
        return record

    @staticmethod
    def _count(path: Path) -> int:
        if not path.exists():
            return 0
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())

    def _flush(self) -> int:
        # move the spool aside first, so records spooled during the replay are not lost
        with self._file_lock:
            if self.spool_path.exists() and not self.flushing_path.exists():
                os.replace(self.spool_path, self.flushing_path)
        if not self.flushing_path.exists():
            self._pending = 0
            return 0
        records = self._read_flushing()
        rest = self._replay_forecasts(records)
        try:
            self._store(rest)
        except InvalidRecord:
            self._replay_one_by_one(rest)
        self.flushing_path.unlink()
        self._pending = max(0, self._pending - len(records))
        if self.spool_path.exists():
            # spooled while we replayed: replay those too
            return len(records) + self._flush()
        self._pending = 0
        logger.info("replayed %d spooled record(s)", len(records))
        return len(records)

    def _read_flushing(self) -> list[Record]:
        """The records being replayed. Lines that are not records are moved to the .torn
        file, and out of the flushing file, so that a replay that fails (database still
        down) does not move them twice."""
        records: list[Record] = []
        kept: list[bytes] = []
        torn: list[tuple[int, bytes, str]] = []
        with open(self.flushing_path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                raw = line.removesuffix(b"\n")
                if not raw.strip():
                    continue
                try:
                    records.append(self._decode(raw))
                    kept.append(raw)
                except ValueError as error:
                    cut = "" if line.endswith(b"\n") else "last line, no newline: cut short; "
                    torn.append((number, raw, cut + str(error)))
        if torn:
            self._move_torn(torn, kept)
        return records

    def _move_torn(self, torn: list[tuple[int, bytes, str]], kept: list[bytes]) -> None:
        # .torn first (fsynced): a crash before the rewrite can copy a line twice, never lose it
        data = b"".join(raw + b"\n" for _, raw, _ in torn)
        if self._torn_tail(self.torn_path):
            data = b"\n" + data
        self._append_bytes(self.torn_path, data)
        self._torn += len(torn)
        for number, _, reason in torn[:LOGGED_TORN]:
            logger.error(
                "line %d of %s is not a record (%s); moved to %s",
                number,
                self.flushing_path,
                reason,
                self.torn_path,
            )
        if len(torn) > LOGGED_TORN:
            logger.error(
                "%d more torn spool line(s) moved to %s", len(torn) - LOGGED_TORN, self.torn_path
            )
        rewritten = self.flushing_path.with_name(self.flushing_path.name + ".tmp")
        self._append_bytes(rewritten, b"".join(raw + b"\n" for raw in kept), os.O_TRUNC)
        os.replace(rewritten, self.flushing_path)
        self._pending = max(0, self._pending - len(torn))

    def _replay_forecasts(self, records: list[Record]) -> list[Record]:
        """Replay the spooled forecast requests (a served record and its shadows, one
        timestamp) as the server logs them: one served forecast per game. A request whose
        game was forecast meanwhile from other inputs (another replica, during the outage)
        goes to ``.rejected``, said so, never silently away. Returns the other records, in
        order, for the plain replay."""
        requests: dict[tuple[str, str], list[PredictionRecord]] = {}
        rest: list[Record] = []
        for record in records:
            if isinstance(record, PredictionRecord):
                key = (record.game_id, record.predicted_at.isoformat())
                if record.served or key in requests:
                    requests.setdefault(key, []).append(record)
                    continue
            rest.append(record)
        groups = [group for group in requests.values() if group[0].served]
        unserved: list[Record] = [
            r for group in requests.values() if not group[0].served for r in group
        ]
        rest = unserved + rest
        if not groups:
            return rest
        logged = self.log.record_forecasts(groups)
        lost = [
            (group, kept)
            for group, kept in zip(groups, logged, strict=True)
            if not same_forecast(kept, group[0]) and kept.inputs != group[0].inputs
        ]
        for group, kept in lost:
            logger.error(
                "spooled forecast of game %s (%s) lost to the one logged at %s from other "
                "inputs; kept in %s",
                group[0].game_id,
                group[0].predicted_at.isoformat(),
                kept.predicted_at.isoformat(),
                self.rejected_path,
            )
        if lost:
            self._append(self.rejected_path, [r for group, _ in lost for r in group])
        return rest

    def _replay_one_by_one(self, records: list[Record]) -> None:
        rejected = []
        for record in records:
            try:
                self._store([record])
            except InvalidRecord as error:
                logger.error("spooled record rejected (%s); kept in %s", error, self.rejected_path)
                rejected.append(record)
        if rejected:
            self._append(self.rejected_path, rejected)
