"""Writes that survive a database outage.

``SpoolingPredictionLog`` writes through to the prediction log; when the database cannot be
reached, records are appended (and fsynced) to a local JSON-lines spool file instead, and
replayed in order before the next write or on ``flush()``. Replays are idempotent (unique
keys in the log), so a crash between committing a replay and clearing the spool cannot store
a record twice: each record is stored exactly once. A replayed record the log rejects (e.g. an
outcome for a game it never saw) goes to a ``.rejected`` file, never silently away.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from nba_forecast.storage.prediction_log import (
    InvalidRecord,
    OutcomeRecord,
    PredictionLog,
    PredictionRecord,
)

logger = logging.getLogger(__name__)

Record = PredictionRecord | OutcomeRecord


def database_unavailable(error: Exception) -> bool:
    """Connection-level failures (spool and retry), as opposed to bad data (raise)."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class SpoolingPredictionLog:
    def __init__(self, log: PredictionLog, spool_path: Path) -> None:
        self.log = log
        self.spool_path = spool_path
        self.flushing_path = spool_path.with_name(spool_path.name + ".flushing")
        self.rejected_path = spool_path.with_name(spool_path.name + ".rejected")
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------------------
    def record_predictions(self, records: Sequence[PredictionRecord]) -> str:
        return self._write(list(records))

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> str:
        return self._write(list(records))

    def pending(self) -> int:
        """Records waiting in the spool."""
        return sum(self._count(p) for p in (self.flushing_path, self.spool_path))

    def flush(self) -> int:
        """Replay the spool into the database; returns how many records were replayed.
        Raises the database's error if it is still unavailable (the spool is kept)."""
        with self._lock:
            return self._flush()

    # -- internals -----------------------------------------------------------------------
    def _write(self, records: list[Record]) -> str:
        """'stored' or 'spooled'. Invalid records raise before anything is written."""
        for record in records:
            record.row()  # validate up front: bad data is an error, not an outage
        with self._lock:
            try:
                self._flush()
                self._store(records)
                return "stored"
            except Exception as error:
                if not database_unavailable(error):
                    raise
                logger.warning(
                    "prediction log unreachable (%s); spooling %d record(s)",
                    type(error).__name__,
                    len(records),
                )
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
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(self._encode(r)) + "\n" for r in records)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _encode(record: Record) -> dict[str, Any]:
        kind = "prediction" if isinstance(record, PredictionRecord) else "outcome"
        return {"kind": kind, "record": record.to_json()}

    @staticmethod
    def _decode(line: str) -> Record:
        data = json.loads(line)
        if data["kind"] == "prediction":
            return PredictionRecord.from_json(data["record"])
        return OutcomeRecord.from_json(data["record"])

    @staticmethod
    def _count(path: Path) -> int:
        if not path.exists():
            return 0
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())

    def _flush(self) -> int:
        # move the spool aside first, so records spooled during the replay are not lost
        if self.spool_path.exists() and not self.flushing_path.exists():
            os.replace(self.spool_path, self.flushing_path)
        if not self.flushing_path.exists():
            return 0
        lines = [line for line in self.flushing_path.read_text().splitlines() if line.strip()]
        records = [self._decode(line) for line in lines]
        try:
            self._store(records)
        except InvalidRecord:
            self._replay_one_by_one(records)
        self.flushing_path.unlink()
        if self.spool_path.exists():
            # spooled while we replayed: replay those too
            return len(records) + self._flush()
        logger.info("replayed %d spooled record(s)", len(records))
        return len(records)

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
