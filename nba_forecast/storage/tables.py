"""The prediction log's tables (SQLAlchemy Core). Migrations in ``migrations/`` create them;
a test checks the two agree."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("game_id", String(32), nullable=False),
    Column("predicted_at", DateTime(timezone=True), nullable=False),
    Column("as_of_minute", SmallInteger, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("arm", String(8), nullable=False),  # A, B or shadow
    Column("forecast", Float, nullable=False),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Column("alpha", Float, nullable=False),  # the interval is 1 - alpha
    Column("components", Text, nullable=False),  # JSON: component name -> forecast
    Column("latency_ms", Float, nullable=False),
    Column("inputs", String(64), nullable=True),  # digest of the request's model inputs
    Column("scale", Float, nullable=True),  # the interval's game-state scale s(x)
    # one forecast per game, minute, version and arm: writing it twice stores it once
    UniqueConstraint("game_id", "as_of_minute", "model_version", "arm", name="uq_prediction"),
    Index("ix_predictions_predicted_at", "predicted_at"),
    # one served forecast per game, whichever version: a second is not stored
    Index(
        "uq_served_prediction",
        "game_id",
        "as_of_minute",
        unique=True,
        sqlite_where=text("arm IN ('A', 'B')"),
        postgresql_where=text("arm IN ('A', 'B')"),
    ),
    Index("ix_predictions_version_arm", "model_version", "arm", "predicted_at"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("game_id", String(32), primary_key=True),
    Column("actual", Float, nullable=False),  # the halftime margin m_24
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_outcomes_recorded_at", "recorded_at"),
)

# a live game's feed state (serving.live.LiveGame as JSON); ``revision`` orders concurrent
# updates from several replicas (a write wins only over the revision it read)
live_games = Table(
    "live_games",
    metadata,
    Column("game_id", String(32), primary_key=True),
    Column("state", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
