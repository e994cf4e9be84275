"""Task use cases, shared by the REST routes and the MCP tools."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.db import Database
from todochat.errors import NotFound
from todochat.idempotency import service as idempotency
from todochat.idempotency.service import IdempotencyKey
from todochat.logs import timed
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


@timed("tasks.list")
async def list_tasks(
    *, db: Database, user_id: str, status: TaskStatus = TaskStatus.all
) -> list[TaskRead]:
    async def work(session: AsyncSession) -> list[TaskRead]:
        rows = await repository.list_for_user(session, user_id=user_id, status=status)
        return [TaskRead.model_validate(row) for row in rows]

    return await db.run(work)


@timed("tasks.get")
async def get_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        return _found(await repository.get(session, user_id=user_id, task_id=task_id), task_id)

    return await db.run(work)


@timed("tasks.create")
async def create_task(
    *, db: Database, user_id: str, data: TaskCreate, idempotency_key: IdempotencyKey | None = None
) -> TaskRead:
    """Create a task; with a key, at most once: a repeat returns the task first created."""

    async def work(session: AsyncSession) -> TaskRead:
        row = await repository.add(
            session,
            user_id=user_id,
            title=data.title,
            description=data.description or None,
            at=utcnow(),
        )
        return TaskRead.model_validate(row)

    return await idempotency.run_once(
        db,
        user_id=user_id,
        key=idempotency_key,
        body=data,
        act=work,
        status_code=201,
        dump=lambda task: task.model_dump(mode="json"),
        load=TaskRead.model_validate,
    )


@timed("tasks.update")
async def update_task(*, db: Database, user_id: str, task_id: int, data: TaskUpdate) -> TaskRead:
    # null title/completed mean "leave as is" (a title is never empty); "" clears the description.
    changes: dict[str, Any] = {
        k: v
        for k, v in data.model_dump(exclude_unset=True).items()
        if v is not None or k == "description"
    }
    if "description" in changes:
        changes["description"] = changes["description"] or None

    async def work(session: AsyncSession) -> TaskRead:
        # One statement checks the owner and applies the edit; an edit that changes nothing
        # leaves updated_at alone (D9).
        row = await repository.update(
            session, user_id=user_id, task_id=task_id, changes=changes, at=utcnow()
        )
        return _found(row, task_id)

    return await db.run(work)


@timed("tasks.set_completed")
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


@timed("tasks.delete")
async def delete_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        return _found(await repository.delete(session, user_id=user_id, task_id=task_id), task_id)

    return await db.run(work)
