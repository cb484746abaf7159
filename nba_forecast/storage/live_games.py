"""Live games in the prediction database: every replica and every restart sees one game.

A score update reads the game and its revision, applies the update in memory (forecasting
when it is due), and writes the new state back only if the revision is still the one it
read, in the same transaction as the forecast and outcome it logs. Two replicas updating
one game at once: one commits, the other re-reads and applies its update to the new state;
so each game gets one forecast and one outcome, whichever replica sees which update.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from nba_forecast.serving.live import LiveGame
from nba_forecast.storage.prediction_log import (
    OutcomeRecord,
    PredictionLog,
    PredictionRecord,
    stored_utc,
)
from nba_forecast.storage.tables import live_games


class LiveGameStore:
    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def load(self, game_id: str) -> tuple[LiveGame | None, int]:
        """The game and its revision (None, 0 when no update has arrived)."""
        query = select(live_games.c.state, live_games.c.revision).where(
            live_games.c.game_id == game_id
        )
        with self.log.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None, 0
        return LiveGame.from_json(json.loads(row.state)), int(row.revision)

    def recent(self, limit: int) -> list[tuple[LiveGame, dt.datetime]]:
        """The ``limit`` games updated last, newest first, with their last update's time."""
        query = (
            select(live_games.c.state, live_games.c.updated_at)
            .order_by(live_games.c.updated_at.desc(), live_games.c.game_id)
            .limit(limit)
        )
        with self.log.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            (LiveGame.from_json(json.loads(row.state)), stored_utc(row.updated_at)) for row in rows
        ]

    def revisions(self, game_ids: Sequence[str]) -> dict[str, int]:
        """The current revision of each of ``game_ids`` that exists (one query)."""
        query = select(live_games.c.game_id, live_games.c.revision).where(
            live_games.c.game_id.in_(list(game_ids))
        )
        with self.log.engine.connect() as connection:
            return {row.game_id: int(row.revision) for row in connection.execute(query)}

    def save(
        self,
        game: LiveGame,
        revision: int,
        forecast: Sequence[PredictionRecord] = (),
        outcome: OutcomeRecord | None = None,
    ) -> PredictionRecord | bool | None:
        """Write the game over ``revision`` with the forecast (served record first) and
        outcome it logs, in one transaction. False when another writer changed the game
        first (nothing written: re-read and retry); else the served forecast as logged
        (the game's earlier one if it had one: compare ``inputs``), or None without one."""
        now = dt.datetime.now(dt.UTC)
        state = json.dumps(game.to_json(), sort_keys=True)
        table = live_games.c
        try:
            with self.log.engine.begin() as connection:
                if revision == 0:
                    connection.execute(
                        live_games.insert().values(
                            game_id=game.game_id, state=state, revision=1, updated_at=now
                        )
                    )
                else:
                    claimed = connection.execute(
                        update(live_games)
                        .where(table.game_id == game.game_id, table.revision == revision)
                        .values(state=state, revision=revision + 1, updated_at=now)
                    )
                    if claimed.rowcount != 1:
                        connection.rollback()
                        return False
                logged = self.log.claim_forecasts(connection, [forecast])[0] if forecast else None
                if logged is not None and logged.inputs != forecast[0].inputs:
                    # the game was forecast before (/v1/predict) from other inputs: keep it
                    connection.rollback()
                    return logged
                if outcome is not None:
                    self.log.record_outcomes_in(connection, [outcome])
        except IntegrityError:
            if revision == 0:
                return False  # another replica created the game first
            raise
        return logged
