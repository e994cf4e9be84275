from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from todochat.models.base import created_at_column


class User(SQLModel, table=True):
    """A user who signed up here. Better Auth users live in Better Auth's own table."""

    __tablename__ = "users"

    id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    email: str = Field(sa_column=sa.Column(sa.String(320), nullable=False, unique=True))
    name: str | None = Field(default=None, sa_column=sa.Column(sa.String(100), nullable=True))
    password_hash: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    created_at: datetime = Field(sa_column=created_at_column())
