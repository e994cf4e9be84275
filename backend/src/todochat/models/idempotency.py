from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import JSONType, UTCDateTime, created_at_column, utcnow


class IdempotencyRecord(SQLModel, table=True):
    """One `Idempotency-Key` of one user: the request it stands for and, once known, its answer.

    A chat turn spans several short transactions, so its record also keeps how far the turn got
    (`conversation_id`, `message_id`) and a lease (`locked_until`, `lease_owner`) telling other
    instances that someone is working on it.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key"),
        # Expired keys are purged by age.
        sa.Index("ix_idempotency_keys_created_at", "created_at"),
        sa.CheckConstraint("status IN ('started', 'finished')", name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    key: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    request_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    response_status: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer(), nullable=True)
    )
    response_body: Any = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))
    conversation_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer(), nullable=True)
    )
    message_id: int | None = Field(default=None, sa_column=sa.Column(sa.Integer(), nullable=True))
    lease_owner: str | None = Field(default=None, sa_column=sa.Column(sa.String(32), nullable=True))
    locked_until: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())
