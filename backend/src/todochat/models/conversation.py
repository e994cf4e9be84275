from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import created_at_column, updated_at_column, utcnow


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    # Listing is "this user's conversations, most recently active first".
    __table_args__ = (
        sa.Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),
        # Never reuse an id on SQLite: a stale "task 5" must not name a newer task.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    # Named after the first message, renamed from ChatKit (threads.update); NULL for none.
    title: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=updated_at_column())
