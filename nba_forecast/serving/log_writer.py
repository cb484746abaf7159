"""Logging off the request path: a group commit.

A request hands its records to ``ForecastWriter.log`` and awaits; one writer thread takes
every request waiting (up to ``MAX_BATCH``) and logs them in one transaction, then answers
each with the forecast its game has in the log (its own, or an earlier one). So the CPU cost
per request is a share of one transaction, and a forecast is answered only once it is
durable: stored, or spooled (fsynced) while the database is unavailable.

A database that stops answering holds the writer thread until its statement timeout and
watchdog free it; meanwhile no request waits longer than ``WAIT_S``: it spools its own
records (replays store each record once) and is answered. The writer replays the spool when
its queue is empty, never ahead of a waiting batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from nba_forecast.storage.prediction_log import PredictionRecord
from nba_forecast.storage.spool import SpoolingPredictionLog

logger = logging.getLogger(__name__)

MAX_BATCH = 256
WAIT_S = 0.5  # the longest a request waits on the log before it spools its records itself
REPLAY_EVERY_S = 1.0  # an idle writer replays the spool this often
LINGER_S = 0.002  # how long a batch waits for more requests


@dataclass
class _Request:
    records: Sequence[PredictionRecord]
    future: asyncio.Future[PredictionRecord | None]
    loop: asyncio.AbstractEventLoop


class ForecastWriter:
    def __init__(self, log: SpoolingPredictionLog, wait_s: float = WAIT_S) -> None:
        self.log = log
        self.wait_s = wait_s
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._busy_since: float | None = None  # when the batch in the database began
        self._thread = threading.Thread(target=self._run, name="forecast-writer", daemon=True)
        self._thread.start()

    @property
    def stalled(self) -> bool:
        """The batch in the database has taken longer than a request may wait."""
        since = self._busy_since
        return since is not None and time.monotonic() - since > self.wait_s

    async def log_forecast(self, records: Sequence[PredictionRecord]) -> PredictionRecord | None:
        """Log one request's records (served forecast first); the served forecast its game
        has in the log, or None when the records were spooled."""
        if self.stalled:
            await asyncio.to_thread(self.log.spool, records)
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PredictionRecord | None] = loop.create_future()
        self._queue.put(_Request(records, future, loop))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.wait_s)
        except TimeoutError:
            logger.warning("prediction log slow: spooling game %s's forecast", records[0].game_id)
            await asyncio.to_thread(self.log.spool, records)
            return None

    def close(self, timeout_s: float = 10.0) -> None:
        """Log what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=REPLAY_EVERY_S)
            except queue.Empty:  # idle: replay what an outage spooled
                self._replay()
                continue
            if first is None:
                return
            batch = [first]
            stop = False
            # linger a moment for more: fewer, larger transactions cost the database and
            # this process less CPU than one per request
            until = time.monotonic() + LINGER_S
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return
            if self._queue.empty():
                self._replay()

    def _replay(self) -> None:
        self._busy_since = time.monotonic()
        try:
            self.log.replay()
        except Exception:  # a replay problem must not stop the writer
            logger.exception("replaying the spool failed")
        finally:
            self._busy_since = None

    def _write(self, batch: list[_Request]) -> None:
        self._busy_since = time.monotonic()
        try:
            results: list[PredictionRecord | None] | Exception = self.log.write_forecasts(
                [request.records for request in batch]
            )
        except Exception as error:  # a bad record, a full spool: each request fails
            logger.exception("logging %d forecast request(s) failed", len(batch))
            results = error
        finally:
            self._busy_since = None
        for number, request in enumerate(batch):
            outcome = results if isinstance(results, Exception) else results[number]
            request.loop.call_soon_threadsafe(_settle, request.future, outcome)


def _settle(
    future: asyncio.Future[PredictionRecord | None], outcome: PredictionRecord | Exception | None
) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
