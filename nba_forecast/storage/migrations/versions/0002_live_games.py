"""Live games kept in the database (every replica and restart sees one game), each
forecast's input digest (a repeated request is recognised as the same or refused), and one
served forecast per game (a unique index on the served arms).

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
    duplicated = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM (SELECT game_id FROM predictions WHERE arm IN ('A', 'B') "
            "GROUP BY game_id, as_of_minute HAVING count(*) > 1) AS served_twice"
        )
    )
    if duplicated:
        raise RuntimeError(
            f"{duplicated} game(s) have more than one served forecast (arm A or B) in "
            "predictions; one per game is now enforced. Keep the first of each (the one with "
            "the lowest id), move the others to arm 'shadow' or delete them, then upgrade"
        )
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("inputs", sa.String(64), nullable=True))
    op.create_index(
        "uq_served_prediction",
        "predictions",
        ["game_id", "as_of_minute"],
        unique=True,
        sqlite_where=sa.text("arm IN ('A', 'B')"),
        postgresql_where=sa.text("arm IN ('A', 'B')"),
    )
    op.create_table(
        "live_games",
        sa.Column("game_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("uq_served_prediction", "predictions")
    op.drop_table("live_games")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("inputs")
