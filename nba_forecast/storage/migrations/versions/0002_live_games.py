"""Live games kept in the database (every replica and restart sees one game), and each
forecast's input digest (a repeated request is recognised as the same or refused).

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("inputs", sa.String(64), nullable=True))
    op.create_table(
        "live_games",
        sa.Column("game_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("live_games")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("inputs")
