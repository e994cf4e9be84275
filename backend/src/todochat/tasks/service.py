"""Task use cases, shared by the REST routes and the MCP tools. Each runs inside the caller's
unit of work (`Database.run`, or `idempotency.run_once` for a keyed create), which commits."""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.errors import NotFound, Unprocessable
from todochat.logs import timed
from todochat.models import utcnow
from todochat.tasks import repository
from todochat.tasks.schemas import (
    PAGE_DEFAULT,
    TaskCreate,
    TaskPage,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)


class TaskNotFound(NotFound):
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"Task {task_id} not found")


def _found(row: repository.Row | None, task_id: int) -> TaskRead:
    if row is None:
        raise TaskNotFound(task_id)
    return TaskRead.model_validate(row)


class InvalidCursor(Unprocessable):
    detail = "cursor: not a cursor this API gave out (use the X-Next-Cursor of a previous page)"


# A cursor is a format version ("1") and the id the next page starts below, as 4 bytes in
# base64url: opaque to clients, so that how pages are cut can change without breaking them. Every
# string of this shape decodes to a position (ids 0..2^32-1), so any cursor the documented
# pattern allows is answered, with an empty page at worst.
CURSOR_PATTERN = r"^1[A-Za-z0-9_-]{6}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(task_id: int) -> str:
    return "1" + base64.urlsafe_b64encode(task_id.to_bytes(4, "big")).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor()
    return int.from_bytes(base64.urlsafe_b64decode(cursor[1:] + "=="), "big")


@timed("tasks.list")
async def list_tasks(
    session: AsyncSession,
    *,
    user_id: str,
    status: TaskStatus = TaskStatus.all,
    limit: int = PAGE_DEFAULT,
    cursor: str | None = None,
) -> TaskPage:
    """A page of the user's tasks, newest first, starting after `cursor` when one is given."""
    before_id = decode_cursor(cursor) if cursor is not None else None
    # One more than asked for tells whether there is a next page.
    rows = await repository.list_for_user(
        session, user_id=user_id, status=status, limit=limit + 1, before_id=before_id
    )
    tasks = [TaskRead.model_validate(row) for row in rows]
    if len(tasks) <= limit:
        return TaskPage(tasks=tasks, next_cursor=None)
    return TaskPage(tasks=tasks[:limit], next_cursor=encode_cursor(tasks[limit - 1].id))


@timed("tasks.get")
async def get_task(session: AsyncSession, *, user_id: str, task_id: int) -> TaskRead:
    return _found(await repository.get(session, user_id=user_id, task_id=task_id), task_id)


@timed("tasks.create")
async def create_task(session: AsyncSession, *, user_id: str, data: TaskCreate) -> TaskRead:
    row = await repository.add(
        session,
        user_id=user_id,
        title=data.title,
        description=data.description or None,
        at=utcnow(),
    )
    return TaskRead.model_validate(row)


@timed("tasks.update")
async def update_task(
    session: AsyncSession, *, user_id: str, task_id: int, data: TaskUpdate
) -> TaskRead:
    # null title/completed mean "leave as is" (a title is never empty); "" clears the description.
    changes: dict[str, Any] = {
        k: v
        for k, v in data.model_dump(exclude_unset=True).items()
        if v is not None or k == "description"
    }
    if "description" in changes:
        changes["description"] = changes["description"] or None
    # One statement checks the owner and applies the edit; an edit that changes nothing
    # leaves updated_at alone (D9).
    row = await repository.update(
        session, user_id=user_id, task_id=task_id, changes=changes, at=utcnow()
    )
    return _found(row, task_id)


@timed("tasks.set_completed")
async def set_completed(
    session: AsyncSession, *, user_id: str, task_id: int, completed: bool | None = None
) -> TaskRead:
    """Mark a task completed, or toggle it when `completed` is None."""
    row = await repository.set_completed(
        session, user_id=user_id, task_id=task_id, completed=completed, at=utcnow()
    )
    return _found(row, task_id)


@timed("tasks.delete")
async def delete_task(session: AsyncSession, *, user_id: str, task_id: int) -> TaskRead:
    return _found(await repository.delete(session, user_id=user_id, task_id=task_id), task_id)
