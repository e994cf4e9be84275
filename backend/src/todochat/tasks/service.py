"""Task use cases, shared by the REST routes and the MCP tools."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.db import Database
from todochat.errors import NotFound
from todochat.models import utcnow
from todochat.tasks import repository
from todochat.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate


class TaskNotFound(NotFound):
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"Task {task_id} not found")


def _found(row: repository.Row | None, task_id: int) -> TaskRead:
    if row is None:
        raise TaskNotFound(task_id)
    return TaskRead.model_validate(row)


async def list_tasks(
    *, db: Database, user_id: str, status: TaskStatus = TaskStatus.all
) -> list[TaskRead]:
    async def work(session: AsyncSession) -> list[TaskRead]:
        rows = await repository.list_for_user(session, user_id=user_id, status=status)
        return [TaskRead.model_validate(row) for row in rows]

    return await db.run(work)


async def get_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        return _found(await repository.get(session, user_id=user_id, task_id=task_id), task_id)

    return await db.run(work)


async def create_task(*, db: Database, user_id: str, data: TaskCreate) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        row = await repository.add(
            session,
            user_id=user_id,
            title=data.title,
            description=data.description or None,
            at=utcnow(),
        )
        return TaskRead.model_validate(row)

    return await db.run(work)


async def update_task(*, db: Database, user_id: str, task_id: int, data: TaskUpdate) -> TaskRead:
    values: dict[str, Any] = {}
    for field, value in data.model_dump(exclude_unset=True).items():
        if field in ("title", "completed") and value is None:
            continue  # null means "leave it"; a title can never be empty
        values[field] = (value or None) if field == "description" else value
    # Known deviation (D9): an empty body still refreshes updated_at.
    values["updated_at"] = utcnow()

    async def work(session: AsyncSession) -> TaskRead:
        row = await repository.update(session, user_id=user_id, task_id=task_id, values=values)
        return _found(row, task_id)

    return await db.run(work)


async def set_completed(
    *, db: Database, user_id: str, task_id: int, completed: bool | None = None
) -> TaskRead:
    """Mark a task completed, or toggle it when `completed` is None."""

    async def work(session: AsyncSession) -> TaskRead:
        row = await repository.set_completed(
            session, user_id=user_id, task_id=task_id, completed=completed, at=utcnow()
        )
        return _found(row, task_id)

    return await db.run(work)


async def delete_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        return _found(await repository.delete(session, user_id=user_id, task_id=task_id), task_id)

    return await db.run(work)
