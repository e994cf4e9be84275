"""Task use cases, shared by the REST routes and the MCP tools."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.db import Database
from todochat.errors import NotFound
from todochat.idempotency import service as idempotency
from todochat.idempotency.service import IdempotencyKey
from todochat.logs import timed
from todochat.models import Task, utcnow
from todochat.tasks import repository
from todochat.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate


class TaskNotFound(NotFound):
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"Task {task_id} not found")


async def _owned(session: AsyncSession, *, user_id: str, task_id: int) -> Task:
    task = await repository.get(session, user_id=user_id, task_id=task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


@timed("tasks.list")
async def list_tasks(
    *, db: Database, user_id: str, status: TaskStatus = TaskStatus.all
) -> list[TaskRead]:
    async def work(session: AsyncSession) -> list[TaskRead]:
        tasks = await repository.list_for_user(session, user_id=user_id, status=status)
        return [TaskRead.model_validate(t) for t in tasks]

    return await db.run(work)


@timed("tasks.get")
async def get_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        return TaskRead.model_validate(await _owned(session, user_id=user_id, task_id=task_id))

    return await db.run(work)


@timed("tasks.create")
async def create_task(
    *, db: Database, user_id: str, data: TaskCreate, idempotency_key: IdempotencyKey | None = None
) -> TaskRead:
    """Create a task; with a key, at most once: a repeat returns the task first created."""

    async def work(session: AsyncSession) -> TaskRead:
        now = utcnow()
        task = Task(
            user_id=user_id,
            title=data.title,
            description=data.description or None,
            created_at=now,
            updated_at=now,
        )
        return TaskRead.model_validate(await repository.add(session, task=task))

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
    changes = {
        k: v
        for k, v in data.model_dump(exclude_unset=True).items()
        if v is not None or k == "description"
    }
    if "description" in changes:
        changes["description"] = changes["description"] or None

    async def work(session: AsyncSession) -> TaskRead:
        task = await _owned(session, user_id=user_id, task_id=task_id)
        changed = {k: v for k, v in changes.items() if getattr(task, k) != v}
        if changed:  # an edit that changes nothing leaves updated_at alone
            for field, value in changed.items():
                setattr(task, field, value)
            task.updated_at = utcnow()
            await session.flush()
        return TaskRead.model_validate(task)

    return await db.run(work)


@timed("tasks.set_completed")
async def set_completed(
    *, db: Database, user_id: str, task_id: int, completed: bool | None = None
) -> TaskRead:
    """Mark a task completed, or toggle it when `completed` is None."""

    async def work(session: AsyncSession) -> TaskRead:
        task = await _owned(session, user_id=user_id, task_id=task_id)
        task.completed = (not task.completed) if completed is None else completed
        task.updated_at = utcnow()
        await session.flush()
        return TaskRead.model_validate(task)

    return await db.run(work)


@timed("tasks.delete")
async def delete_task(*, db: Database, user_id: str, task_id: int) -> TaskRead:
    async def work(session: AsyncSession) -> TaskRead:
        task = await _owned(session, user_id=user_id, task_id=task_id)
        snapshot = TaskRead.model_validate(task)
        await repository.delete(session, task=task)
        return snapshot

    return await db.run(work)
