"""conversation turn lease: one turn at a time on a conversation (issue 15)

Revision ID: 5e1f0c7a9b2d
Revises: 5e1f0c2a9b7d
Create Date: 2026-12-04 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import todochat.models.base

revision: str = "5e1f0c7a9b2d"
down_revision: str | None = "5e1f0c2a9b7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("turn_owner", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("turn_until", todochat.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("turn_until")
        batch.drop_column("turn_owner")
