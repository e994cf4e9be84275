"""Task queries. Every one is filtered by the owner's user id: not yours == not there."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from todochat.logs import timed
from todochat.models import Task
from todochat.tasks.schemas import TaskStatus


@timed("repo.tasks.list_for_user", level=logging.DEBUG)
async def list_for_user(
    session: AsyncSession, *, user_id: str, status: TaskStatus = TaskStatus.all
) -> list[Task]:
    query = select(Task).where(Task.user_id == user_id)
    if status is TaskStatus.pending:
        query = query.where(col(Task.completed).is_(False))
    elif status is TaskStatus.completed:
        query = query.where(col(Task.completed).is_(True))
    result = await session.execute(query.order_by(col(Task.id).desc()))
    return list(result.scalars().all())


@timed("repo.tasks.get", level=logging.DEBUG)
async def get(session: AsyncSession, *, user_id: str, task_id: int) -> Task | None:
    result = await session.execute(select(Task).where(Task.id == task_id, Task.user_id == user_id))
    return result.scalar_one_or_none()


@timed("repo.tasks.add", level=logging.DEBUG)
async def add(session: AsyncSession, *, task: Task) -> Task:
    session.add(task)
    await session.flush()
    return task


@timed("repo.tasks.delete", level=logging.DEBUG)
async def delete(session: AsyncSession, *, task: Task) -> None:
    await session.delete(task)
    await session.flush()
