from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import created_at_column, updated_at_column, utcnow


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    # The owner's list is always read by user, often filtered by completion, newest first.
    __table_args__ = (
        sa.Index("ix_tasks_user_id_completed_id", "user_id", "completed", "id"),
        # Never reuse an id on SQLite: a stale "task 5" must not name a newer task.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key: Better Auth users never get a local row, a valid token is enough.
    user_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    title: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(1000), nullable=True)
    )
    completed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=created_at_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=updated_at_column())
