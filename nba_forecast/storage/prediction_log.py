"""The prediction log: every forecast served and every actual halftime margin.

SQLite by default, PostgreSQL via ``NBA_FORECAST_DATABASE_URL``; the same code and SQL on
both (SQLAlchemy Core, bound parameters only). Writes are idempotent: a prediction is unique
per (game, as-of minute, model version, arm), an outcome per game, and a repeated write is
stored once. Times are UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, case, create_engine, func, select
from sqlalchemy.engine import Connection, make_url

from nba_forecast.storage.tables import metadata, outcomes, predictions

logger = logging.getLogger(__name__)

ARMS = ("A", "B", "shadow")
IN_CHUNK = 500  # game ids per IN (...) list


class InvalidRecord(ValueError):
    """A record that must not be stored; nothing of its batch was written."""


class UnknownGame(InvalidRecord):
    """An outcome for a game that has no prediction."""


class ConflictingOutcome(InvalidRecord):
    """A second, different outcome for a game."""


def utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise InvalidRecord(f"time {value} has no time zone; use UTC-aware datetimes")
    return value.astimezone(dt.UTC)


def stored_utc(value: dt.datetime) -> dt.datetime:
    """A time read back from the log as UTC-aware (SQLite returns it naive, in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _finite(name: str, value: float, game_id: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRecord(f"game {game_id}: {name} is {value}; expected a finite number")
    return number


@dataclass(frozen=True)
class PredictionRecord:
    game_id: str
    predicted_at: dt.datetime
    model_version: str
    arm: str
    forecast: float
    lower: float
    upper: float
    as_of_minute: int = 18
    alpha: float = 0.05
    components: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    inputs: str | None = None  # digest of the model inputs (a repeat is recognised)
    scale: float | None = None  # the interval's game-state scale (online updates need it)

    def row(self) -> dict[str, Any]:
        if not self.game_id or not self.model_version:
            raise InvalidRecord("a prediction needs a game_id and a model_version")
        if self.arm not in ARMS:
            raise InvalidRecord(f"game {self.game_id}: arm {self.arm!r}; expected one of {ARMS}")
        if not 0 <= self.as_of_minute <= 48:
            raise InvalidRecord(
                f"game {self.game_id}: as_of_minute {self.as_of_minute} not in 0..48"
            )
        values = {
            k: _finite(k, getattr(self, k), self.game_id)
            for k in ("forecast", "lower", "upper", "alpha", "latency_ms")
        }
        if values["lower"] > values["upper"]:
            raise InvalidRecord(f"game {self.game_id}: lower {self.lower} > upper {self.upper}")
        if not 0 < values["alpha"] < 1:
            raise InvalidRecord(f"game {self.game_id}: alpha {self.alpha} not in (0, 1)")
        components = {
            str(k): _finite(f"component {k}", v, self.game_id) for k, v in self.components.items()
        }
        scale = None if self.scale is None else _finite("scale", self.scale, self.game_id)
        if scale is not None and scale <= 0:
            raise InvalidRecord(f"game {self.game_id}: interval scale {scale} is not positive")
        return {
            **values,
            "game_id": self.game_id,
            "predicted_at": utc(self.predicted_at),
            "as_of_minute": int(self.as_of_minute),
            "model_version": self.model_version,
            "arm": self.arm,
            "components": json.dumps(components, sort_keys=True),
            "inputs": self.inputs,
            "scale": scale,
        }

    @property
    def served(self) -> bool:
        return self.arm in ("A", "B")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "predicted_at": self.predicted_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PredictionRecord:
        return cls(**{**data, "predicted_at": dt.datetime.fromisoformat(data["predicted_at"])})


@dataclass(frozen=True)
class OutcomeRecord:
    game_id: str
    actual: float
    recorded_at: dt.datetime

    def row(self) -> dict[str, Any]:
        if not self.game_id:
            raise InvalidRecord("an outcome needs a game_id")
        return {
            "game_id": self.game_id,
            "actual": _finite("actual", self.actual, self.game_id),
            "recorded_at": utc(self.recorded_at),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "recorded_at": self.recorded_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutcomeRecord:
        return cls(**{**data, "recorded_at": dt.datetime.fromisoformat(data["recorded_at"])})


def same_forecast(logged: PredictionRecord, mine: PredictionRecord) -> bool:
    """Whether the logged served forecast is this very record."""
    return (logged.model_version, logged.predicted_at, logged.inputs) == (
        mine.model_version,
        utc(mine.predicted_at),
        mine.inputs,
    )


def _chunks(values: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


CONNECT_TIMEOUT_S = 10


def _sqlite_wal(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class StalledConnectionWatchdog:
    """Shuts down the socket of any PostgreSQL connection checked out for longer than
    ``limit_s`` (the client side of a statement timeout, for a server that never answers)."""

    def __init__(self, engine: Engine, limit_s: float) -> None:
        from sqlalchemy import event

        self.limit_s = limit_s
        self._out: dict[int, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def start(self) -> None:
        threading.Thread(target=self._watch, name="db-watchdog", daemon=True).start()

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            self._out[id(dbapi_connection)] = (dbapi_connection, time.monotonic())

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        with self._lock:
            self._out.pop(id(dbapi_connection), None)

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.5, self.limit_s / 4))
            now = time.monotonic()
            with self._lock:
                stalled = [c for c, since in self._out.values() if now - since > self.limit_s]
                for connection in stalled:
                    self._out.pop(id(connection), None)
            for connection in stalled:
                logger.warning("database connection stalled > %.1f s: closing it", self.limit_s)
                with contextlib.suppress(Exception):
                    fd = os.dup(connection.pgconn.socket)
                    with socket.socket(fileno=fd) as sock:
                        sock.shutdown(socket.SHUT_RDWR)


class PredictionLog:
    def __init__(
        self, url: str, *, statement_timeout_s: float | None = None, **engine_options: Any
    ) -> None:
        """``statement_timeout_s`` bounds every statement (PostgreSQL: server side; SQLite:
        how long to wait for another writer's lock): the server sets it, so a stalled
        database means a fast error and a spooled write, never a hung request."""
        # plain postgresql:// would pick psycopg2; the pinned driver is psycopg 3
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.url = url
        backend = make_url(url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
        if backend == "postgresql":
            # psycopg 3's pipelined executemany beats multi-VALUES batches here (2.5x)
            engine_options.setdefault("use_insertmanyvalues", False)
            # a server that accepts and never answers must not hang a task for good
            connect_args = engine_options.setdefault("connect_args", {})
            if "connect_timeout" not in url:
                bound = CONNECT_TIMEOUT_S if statement_timeout_s is None else statement_timeout_s
                connect_args.setdefault("connect_timeout", max(2, int(bound)))
            if statement_timeout_s is not None:
                ms = max(1, int(statement_timeout_s * 1000))
                given = make_url(url).query.get("options", "")  # e.g. a search_path
                given = given if isinstance(given, str) else " ".join(given)
                timeouts = f"-c statement_timeout={ms} -c lock_timeout={ms}"
                connect_args["options"] = f"{given} {timeouts}".strip()
        elif statement_timeout_s is not None:
            engine_options.setdefault("connect_args", {})["timeout"] = statement_timeout_s
        engine_options.setdefault("pool_pre_ping", True)
        self.statement_timeout_s = statement_timeout_s
        self.engine: Engine = create_engine(url, **engine_options)
        if backend == "sqlite" and make_url(url).database not in (None, "", ":memory:"):
            from sqlalchemy import event

            # WAL: readers never block the writer (several server processes on one file),
            # and a commit costs no fsync (synchronous=NORMAL: safe against a crash of the
            # process; the last commits can be lost only to a power cut)
            event.listen(self.engine, "connect", _sqlite_wal)
        if backend == "postgresql" and statement_timeout_s is not None:
            # a server that stops answering (not only a slow statement) must not hold a
            # thread for good: a connection checked out longer than twice the timeout has
            # its socket shut down, so the blocked call fails and the write is spooled
            StalledConnectionWatchdog(self.engine, 2 * statement_timeout_s).start()

    @classmethod
    def open(cls, url: str) -> PredictionLog:
        """The prediction log at ``url``, migrated to the latest revision (a SQLite file's
        directory is created)."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return cls(url).migrate()

    def migrate(self, revision: str = "head") -> PredictionLog:
        """Create or upgrade the tables (Alembic, to the latest revision by default)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("nba_forecast.storage") / "migrations")
        )
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return self

    def _insert(self, table: Any) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    # -- writes --------------------------------------------------------------------------
    def record_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Store predictions, all or none; ones already stored are skipped."""
        rows = [r.row() for r in records]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(self._insert(predictions), rows)

    def record_forecasts(
        self, requests: Sequence[Sequence[PredictionRecord]]
    ) -> list[PredictionRecord]:
        """Log each request's records (its served forecast first, then any shadow) unless
        the game already has a served forecast; returns, per request, the served forecast
        as logged: the request's own, or the game's earlier one (compare ``inputs`` to tell
        a repeat from a contradiction). One transaction for the whole batch."""
        # autocommit: each statement commits itself, so a batch is one round trip (two with
        # shadow forecasts) instead of BEGIN, INSERT, COMMIT; a shadow row is written only
        # after its served row, which is all the order that matters
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return self.claim_forecasts(connection, requests)

    def claim_forecasts(
        self, connection: Connection, requests: Sequence[Sequence[PredictionRecord]]
    ) -> list[PredictionRecord]:
        """``record_forecasts`` inside the caller's transaction."""
        for records in requests:
            if not records or not records[0].served:
                raise InvalidRecord("each request's records start with its served forecast")
        # the served forecasts first: the unique index on served arms keeps the game's
        # first one; only when some were kept out is the log read back
        first: dict[str, Sequence[PredictionRecord]] = {}
        for records in requests:
            first.setdefault(records[0].game_id, records)
        rows = {game: [r.row() for r in records] for game, records in first.items()}  # all valid
        served = [game_rows[0] for game_rows in rows.values()]
        inserted = connection.execute(self._insert(predictions), served).rowcount
        if inserted == len(served):
            logged = {game: records[0] for game, records in first.items()}
        else:  # some games already had a served forecast (a repeat, another replica)
            logged = self._served(connection, sorted(first))
        ours = [
            g
            for g, records in first.items()
            if logged[g] is records[0] or same_forecast(logged[g], records[0])
        ]
        shadows = [row for game in ours for row in rows[game][1:]]
        if shadows:
            connection.execute(self._insert(predictions), shadows)
        return [logged[records[0].game_id] for records in requests]

    def _served(self, connection: Connection, ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The served forecast (arm A or B, as of minute 18) logged for each of ``ids``."""
        found: dict[str, PredictionRecord] = {}
        p = predictions.c
        for chunk in _chunks(ids):
            query = (
                select(predictions)
                .where(p.game_id.in_(chunk), p.arm.in_(("A", "B")), p.as_of_minute == 18)
                .order_by(p.id)
            )
            for row in connection.execute(query).mappings():
                if row["game_id"] in found:
                    continue
                at = row["predicted_at"]
                found[row["game_id"]] = PredictionRecord(
                    row["game_id"],
                    stored_utc(at),
                    row["model_version"],
                    row["arm"],
                    row["forecast"],
                    row["lower"],
                    row["upper"],
                    row["as_of_minute"],
                    row["alpha"],
                    json.loads(row["components"]),
                    row["latency_ms"],
                    row["inputs"],
                    row["scale"],
                )
        return found

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Store outcomes, all or none; ones already stored are skipped. Unknown games and
        outcomes that contradict a stored one are errors."""
        rows = [r.row() for r in records]
        if not rows:
            return
        by_game: dict[str, float] = {}
        for row in rows:
            if by_game.setdefault(row["game_id"], row["actual"]) != row["actual"]:
                raise ConflictingOutcome(
                    f"game {row['game_id']}: two different outcomes in one batch"
                )
        with self.engine.begin() as connection:
            self._check_outcomes(connection, by_game)
            connection.execute(self._insert(outcomes), rows)

    def record_outcomes_in(self, connection: Connection, records: Sequence[OutcomeRecord]) -> None:
        """``record_outcomes`` inside the caller's transaction."""
        rows = [r.row() for r in records]
        self._check_outcomes(connection, {row["game_id"]: row["actual"] for row in rows})
        connection.execute(self._insert(outcomes), rows)

    def _check_outcomes(self, connection: Connection, by_game: dict[str, float]) -> None:
        ids = sorted(by_game)
        known: set[str] = set()
        stored: dict[str, float] = {}
        for chunk in _chunks(ids):
            query = select(predictions.c.game_id).where(predictions.c.game_id.in_(chunk)).distinct()
            known.update(connection.scalars(query))
            query = select(outcomes.c.game_id, outcomes.c.actual).where(
                outcomes.c.game_id.in_(chunk)
            )
            stored.update({g: a for g, a in connection.execute(query)})
        unknown = [g for g in ids if g not in known]
        if unknown:
            raise UnknownGame(f"outcome for game(s) with no prediction: {unknown[:10]}")
        conflicts = [g for g in ids if g in stored and stored[g] != by_game[g]]
        if conflicts:
            g = conflicts[0]
            raise ConflictingOutcome(
                f"game {g}: outcome {by_game[g]} differs from the stored {stored[g]}"
                + (f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else "")
            )

    # -- collector -----------------------------------------------------------------------
    def _window(self, start: dt.datetime, as_of: dt.datetime) -> Any:
        if utc(start) >= utc(as_of):
            raise ValueError(f"empty window: start {start} is not before as_of {as_of}")
        return and_(
            predictions.c.predicted_at >= utc(start),
            predictions.c.predicted_at < utc(as_of),
            outcomes.c.recorded_at <= utc(as_of),  # labels that arrived later do not count
        )

    def joined(self, start: dt.datetime, as_of: dt.datetime) -> pd.DataFrame:
        """Predictions made in [start, as_of) with the outcomes known at ``as_of``."""
        query = (
            select(predictions, outcomes.c.actual, outcomes.c.recorded_at)
            .join(outcomes, predictions.c.game_id == outcomes.c.game_id)
            .where(self._window(start, as_of))
            .order_by(predictions.c.predicted_at, predictions.c.id)
        )
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all())
        if frame.empty:
            return pd.DataFrame(columns=[*predictions.c.keys(), "actual", "recorded_at"])
        for column in ("predicted_at", "recorded_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def window_metrics(self, start: dt.datetime, as_of: dt.datetime) -> pd.DataFrame:
        """MAE, RMSE, bias, coverage, mean width, Winkler score and n per model version and
        arm, computed in the database over [start, as_of)."""
        p, o = predictions.c, outcomes.c
        error = p.forecast - o.actual
        below = case((o.actual < p.lower, p.lower - o.actual), else_=0.0)
        above = case((o.actual > p.upper, o.actual - p.upper), else_=0.0)
        query = (
            select(
                p.model_version,
                p.arm,
                func.count().label("n"),
                func.avg(func.abs(error)).label("mae"),
                func.avg(error * error).label("mse"),
                func.avg(error).label("bias"),
                func.avg(
                    case((and_(o.actual >= p.lower, o.actual <= p.upper), 1.0), else_=0.0)
                ).label("coverage"),
                func.avg(p.upper - p.lower).label("mean_width"),
                func.avg(p.upper - p.lower + 2.0 / p.alpha * (below + above)).label("winkler"),
            )
            .join(outcomes, p.game_id == o.game_id)
            .where(self._window(start, as_of))
            .group_by(p.model_version, p.arm)
            .order_by(p.model_version, p.arm)
        )
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all())
        columns = [
            "model_version",
            "arm",
            "n",
            "mae",
            "rmse",
            "bias",
            "coverage",
            "mean_width",
            "winkler",
        ]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame["rmse"] = frame.pop("mse").astype(float) ** 0.5
        return frame[columns]

    def recent_metrics(self, games: int) -> pd.DataFrame:
        """MAE, coverage (and the nominal level), mean width and n per model version and
        arm over the forecasts (as of minute 18) of the ``games`` games whose outcomes were
        recorded last, with the first and last of those outcome times: the status page's
        rolling window, one query."""
        if games < 1:
            raise ValueError(f"games {games}: the window needs at least one game")
        o = outcomes.c
        recent = (
            select(o.game_id, o.actual, o.recorded_at)
            .order_by(o.recorded_at.desc(), o.game_id.desc())
            .limit(games)
            .subquery()
        )
        p, r = predictions.c, recent.c
        covered = case((and_(r.actual >= p.lower, r.actual <= p.upper), 1.0), else_=0.0)
        query = (
            select(
                p.model_version,
                p.arm,
                func.count().label("n"),
                func.avg(func.abs(p.forecast - r.actual)).label("mae"),
                func.avg(covered).label("coverage"),
                func.avg(1.0 - p.alpha).label("nominal"),
                func.avg(p.upper - p.lower).label("mean_width"),
                func.min(r.recorded_at).label("first_outcome_at"),
                func.max(r.recorded_at).label("last_outcome_at"),
            )
            .join(recent, p.game_id == r.game_id)
            .where(p.as_of_minute == 18)
            .group_by(p.model_version, p.arm)
            .order_by(p.model_version, p.arm)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        columns = [
            "model_version",
            "arm",
            "n",
            "mae",
            "coverage",
            "nominal",
            "mean_width",
            "first_outcome_at",
            "last_outcome_at",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("first_outcome_at", "last_outcome_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def last_prediction_at(self, as_of: dt.datetime) -> dt.datetime | None:
        """Time of the newest prediction made before ``as_of``."""
        query = select(func.max(predictions.c.predicted_at)).where(
            predictions.c.predicted_at < utc(as_of)
        )
        with self.engine.connect() as connection:
            value = connection.scalar(query)
        if value is None:
            return None
        return stored_utc(value)

    def label_lag(self, as_of: dt.datetime, older_than: dt.timedelta) -> int:
        """Games forecast more than ``older_than`` before ``as_of`` with no outcome by then."""
        recorded = select(outcomes.c.game_id).where(outcomes.c.recorded_at <= utc(as_of))
        query = select(func.count(func.distinct(predictions.c.game_id))).where(
            predictions.c.predicted_at < utc(as_of) - older_than,
            predictions.c.game_id.not_in(recorded),
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                "predictions": connection.scalar(select(func.count()).select_from(predictions))
                or 0,
                "outcomes": connection.scalar(select(func.count()).select_from(outcomes)) or 0,
            }

    def drop_all(self) -> None:
        """Remove the tables (tests and benchmarks)."""
        from sqlalchemy import text

        metadata.drop_all(self.engine)
        with self.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
