"""Online interval adaptation (ACI) that every replica agrees on.

A replica does not adapt its intervals from the outcomes it happens to record: it applies
every outcome in the prediction log, in the log's order ((recorded_at, game_id)), to each
version that scored the game. All replicas apply the same updates in the same order, so a
version's interval is the same on each of them (within one sync period), and a restarted
replica rebuilds it from the log. Outcomes are applied ``LAG_S`` after they are recorded, so
a transaction still committing on another replica cannot be skipped past.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select

from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.storage.prediction_log import PredictionLog, stored_utc
from nba_forecast.storage.tables import outcomes, predictions

logger = logging.getLogger(__name__)

LAG_S = 10.0  # longer than any live-game transaction (statements time out at 2 s)
BATCH = 5000


class LoggedIntervals:
    def __init__(
        self,
        log: PredictionLog,
        lag_s: float = LAG_S,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.log = log
        self.lag_s = lag_s
        self.clock = clock
        # per version: the last outcome applied, and the model object it was applied to
        self._cursor: dict[str, tuple[dt.datetime, str]] = {}
        self._model: dict[str, int] = {}

    def sync(self, engine: ForecastEngine) -> int:
        """Apply the outcomes logged since the last sync to every version the engine has
        loaded; returns how many updates were applied."""
        until = self.clock() - dt.timedelta(seconds=self.lag_s)
        applied = 0
        for version, model in list(engine.models.items()):
            if self._model.get(version) != id(model):  # newly loaded: replay from the start
                self._cursor.pop(version, None)
                self._model[version] = id(model)
            while True:
                rows = self._outcomes(version, until)
                if not rows:
                    break
                engine.update_interval(
                    version,
                    [r.actual for r in rows],
                    [r.forecast for r in rows],
                    [1.0 if r.scale is None else r.scale for r in rows],  # older rows: none
                )
                last = rows[-1]
                self._cursor[version] = (stored_utc(last.recorded_at), last.game_id)
                applied += len(rows)
                if len(rows) < BATCH:
                    break
        return applied

    def _outcomes(self, version: str, until: dt.datetime) -> list[Any]:
        p, o = predictions.c, outcomes.c
        conditions = [p.model_version == version, o.recorded_at <= until]
        cursor = self._cursor.get(version)
        if cursor is not None:
            at, game = cursor
            conditions.append(or_(o.recorded_at > at, and_(o.recorded_at == at, o.game_id > game)))
        query = (
            select(o.game_id, o.actual, o.recorded_at, p.forecast, p.scale)
            .join(predictions, p.game_id == o.game_id)
            .where(*conditions, p.as_of_minute == 18)
            .order_by(o.recorded_at, o.game_id)
            .limit(BATCH)
        )
        with self.log.engine.connect() as connection:
            return list(connection.execute(query))
