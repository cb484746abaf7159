"""Server-sent event streams of live games: the forecast the moment it is made, the outcome
at halftime.

One watcher per process polls the database for every game someone is streaming, in one
query every ``POLL_S`` (a change made by another replica arrives within that), and a change
made in this process wakes its streams at once. A stream sends a comment every
``KEEPALIVE_S`` so proxies keep it open through the 12-20 minutes between the two moments;
it ends at the outcome (or when the game can have none), after ``MAX_STREAM_S``, or when
the server shuts down. A database that stops answering pauses the streams; it does not
break them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from nba_forecast.serving.live import LiveGame
from nba_forecast.storage.live_games import LiveGameStore

logger = logging.getLogger(__name__)

POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_STREAM_S = 3 * 3600  # a first half takes about 75 minutes; clients reconnect after
MAX_STREAMS = 1000


class StreamsFull(RuntimeError):
    pass


class GameWatch:
    def __init__(self, store: LiveGameStore) -> None:
        self.store = store
        self._events: dict[str, asyncio.Event] = {}
        self._streams: dict[str, int] = {}
        self._revisions: dict[str, int] = {}
        self._threads = anyio.CapacityLimiter(2)  # never more than two database reads
        self._stopping = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return sum(self._streams.values())

    def changed(self, game_id: str) -> None:
        """A change made in this process: wake the game's streams now."""
        event = self._events.get(game_id)
        if event is not None:
            event.set()

    def stop(self) -> None:
        self._stopping.set()
        for event in self._events.values():
            event.set()

    async def watch(self) -> None:
        """The poller: one query for every streamed game, every POLL_S."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_S)
            games = list(self._streams)
            if not games:
                continue
            try:
                revisions = await anyio.to_thread.run_sync(
                    self.store.revisions, games, limiter=self._threads
                )
            except Exception as error:  # the database is away: streams wait, unbroken
                logger.warning("event streams: cannot poll the database: %s", error)
                continue
            for game_id, revision in revisions.items():
                if self._revisions.get(game_id) != revision:
                    self._revisions[game_id] = revision
                    self.changed(game_id)

    def open(self, game_id: str) -> AsyncIterator[str]:
        if self.open_streams >= MAX_STREAMS:
            raise StreamsFull(f"{MAX_STREAMS} event streams open; try again later")
        self._streams[game_id] = self._streams.get(game_id, 0) + 1
        self._events.setdefault(game_id, asyncio.Event())
        return self._stream(game_id)

    async def _stream(self, game_id: str) -> AsyncIterator[str]:
        sent: set[str] = set()
        deadline = time.monotonic() + MAX_STREAM_S
        try:
            yield ": stream open\n\n"
            while not self._stopping.is_set() and time.monotonic() < deadline:
                event = self._events[game_id]
                event.clear()
                try:
                    game, _ = await anyio.to_thread.run_sync(
                        self.store.load, game_id, limiter=self._threads
                    )
                except Exception as error:
                    logger.warning("event stream of %s: %s", game_id, error)
                    game = None
                for kind, value in moments(game):
                    if kind not in sent:
                        sent.add(kind)
                        yield f"event: {kind}\ndata: {json.dumps(value)}\n\n"
                if game is not None and (game.outcome is not None or game.half_closed):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), KEEPALIVE_S)
                if not event.is_set():
                    yield ": keep-alive\n\n"
        finally:
            self._streams[game_id] -= 1
            if not self._streams[game_id]:
                del self._streams[game_id]
                self._events.pop(game_id, None)
                self._revisions.pop(game_id, None)


def moments(game: LiveGame | None) -> list[tuple[str, Any]]:
    """The events a game has had so far: forecast, outcome, note."""
    if game is None:
        return []
    found: list[tuple[str, Any]] = []
    if game.forecast:
        found.append(("forecast", {"game_id": game.game_id, **game.forecast}))
    if game.outcome is not None:
        found.append(("outcome", {"game_id": game.game_id, "outcome": game.outcome}))
    if game.note:
        found.append(("note", {"game_id": game.game_id, "note": game.note}))
    return found
