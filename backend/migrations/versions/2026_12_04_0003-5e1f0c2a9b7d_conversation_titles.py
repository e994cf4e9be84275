"""conversation titles (ChatKit thread titles)

Revision ID: 5e1f0c2a9b7d
Revises: c82dd437f79f
Create Date: 2026-12-04 17:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1f0c2a9b7d"
down_revision: str | None = "c82dd437f79f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The title a conversation gets from its first message (conversations.service.title_for),
# without the ellipsis: SQL cannot tell a cut word from a whole one cheaply, and an old
# conversation's title only has to name it.
_BACKFILL = sa.text(
    "UPDATE conversations SET title = ("
    " SELECT substr(m.content, 1, 60) FROM messages m"
    " WHERE m.conversation_id = conversations.id AND m.role = 'user'"
    " ORDER BY m.id LIMIT 1"
    ") WHERE title IS NULL"
)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("title", sa.String(length=200), nullable=True))
    op.execute(_BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("title")
