"""Predictions and outcomes.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("game_id", sa.String(32), nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of_minute", sa.SmallInteger, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(8), nullable=False),
        sa.Column("forecast", sa.Float, nullable=False),
        sa.Column("lower", sa.Float, nullable=False),
        sa.Column("upper", sa.Float, nullable=False),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.UniqueConstraint(
            "game_id", "as_of_minute", "model_version", "arm", name="uq_prediction"
        ),
    )
    op.create_index("ix_predictions_predicted_at", "predictions", ["predicted_at"])
    op.create_index(
        "ix_predictions_version_arm", "predictions", ["model_version", "arm", "predicted_at"]
    )
    op.create_table(
        "outcomes",
        sa.Column("game_id", sa.String(32), primary_key=True),
        sa.Column("actual", sa.Float, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outcomes_recorded_at", "outcomes", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("predictions")
