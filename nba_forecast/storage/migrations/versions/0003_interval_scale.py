"""Each forecast's interval scale: the game-state scale s(x) of a normalised conformal
interval (lower/upper = forecast -/+ q * s(x)), which every replica needs to apply the
outcome to the interval online. Older rows have none (read as 1: one width for all games).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("scale", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("scale")
