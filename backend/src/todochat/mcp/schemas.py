"""What the task tools answer: their output schemas, published in the tool list.

A successful call's `structuredContent` is one of these, and its text content the same JSON. A
failed call has no structured content: it is an `isError` result whose text says what went wrong
(MCP, "Error Handling"), so these shapes hold no `error` field.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from pydantic import BaseModel, Field
from typing_extensions import TypedDict


class _TaskChange(BaseModel):
    task_id: int = Field(description="The task's id.")
    title: str = Field(description="The task's title after the change.")


class TaskCreated(_TaskChange):
    status: Literal["created"]


class TaskCompleted(_TaskChange):
    status: Literal["completed"]


class TaskDeleted(_TaskChange):
    status: Literal["deleted"]


class TaskUpdated(_TaskChange):
    status: Literal["updated"]


class ListedTask(TypedDict):
    id: int
    title: str
    description: str | None
    completed: bool


# `more` and `note` only when the list was cut: an uncut list is `{"result": [...]}`, which the
# chat's tool calls store as a bare list.
class TaskList(TypedDict):
    result: list[ListedTask]
    more: NotRequired[Literal[True]]
    note: NotRequired[str]
