from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

from todochat.schemas import Printable

# GET /tasks pages: this many tasks unless the client asks for fewer or more, never more than
# PAGE_MAX. The agent's list_tasks returns PAGE_DEFAULT at most (specs/decisions.md, D31).
PAGE_DEFAULT = 100
PAGE_MAX = 500

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Printable()
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), Printable()]


class TaskStatus(StrEnum):
    all = "all"
    pending = "pending"
    completed = "completed"


class TaskCreate(BaseModel):
    # Unknown fields (id, user_id, timestamps…) are rejected, never silently ignored.
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    # Strict: "yes", "0" or 1 are not booleans, whatever lax parsing would make of them.
    completed: StrictBool | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TaskPage:
    """One page of a user's tasks, newest first; `next_cursor` fetches the older ones."""

    tasks: list[TaskRead]
    next_cursor: str | None
