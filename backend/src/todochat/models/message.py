from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import JSONType, created_at_column, utcnow


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    # History is read as "the last N messages of a conversation", in insertion order.
    __table_args__ = (
        sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        sa.CheckConstraint("role IN ('user', 'assistant')", name="role"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(
        sa_column=sa.Column(
            sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        )
    )
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    content: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, sa_column=sa.Column(JSONType, nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())
