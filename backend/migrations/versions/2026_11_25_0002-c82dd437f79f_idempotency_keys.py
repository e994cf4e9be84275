"""idempotency keys

Revision ID: c82dd437f79f
Revises: 27a3b4c9f056
Create Date: 2026-11-25 16:15:52.438053
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import todochat.models.base

revision: str = "c82dd437f79f"
down_revision: str | None = "27a3b4c9f056"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", todochat.models.base.JSONType, nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("lease_owner", sa.String(length=32), nullable=True),
        sa.Column("locked_until", todochat.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", todochat.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('started', 'finished')", name=op.f("ck_idempotency_keys_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_keys_user_id_key")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created_at")

    op.drop_table("idempotency_keys")
