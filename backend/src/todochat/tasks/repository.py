"""Task queries. Every one is filtered by the owner's user id: not yours == not there.

Core statements on the table, each returning the task's row: a write is one statement (an
UPDATE or DELETE ... RETURNING checks the owner and acts at once), and no ORM unit of work is
paid for on the agent's hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.models import Task
from todochat.tasks.schemas import TaskStatus

Row = dict[str, Any]

_tasks: sa.Table = Task.__table__  # type: ignore[attr-defined]
_t = _tasks.c


async def list_for_user(
    session: AsyncSession, *, user_id: str, status: TaskStatus = TaskStatus.all
) -> list[Row]:
    query = sa.select(_tasks).where(_t.user_id == user_id)
    if status is TaskStatus.pending:
        query = query.where(_t.completed.is_(False))
    elif status is TaskStatus.completed:
        query = query.where(_t.completed.is_(True))
    result = await session.execute(query.order_by(_t.id.desc()))
    return [dict(row) for row in result.mappings()]


async def get(session: AsyncSession, *, user_id: str, task_id: int) -> Row | None:
    result = await session.execute(sa.select(_tasks).where(_t.id == task_id, _t.user_id == user_id))
    row = result.mappings().first()
    return dict(row) if row is not None else None


async def add(
    session: AsyncSession, *, user_id: str, title: str, description: str | None, at: datetime
) -> Row:
    result = await session.execute(
        sa.insert(_tasks)
        .values(
            user_id=user_id,
            title=title,
            description=description,
            completed=False,
            created_at=at,
            updated_at=at,
        )
        .returning(*_tasks.c)
    )
    return dict(result.mappings().one())


async def update(
    session: AsyncSession, *, user_id: str, task_id: int, values: dict[str, Any]
) -> Row | None:
    """Apply `values` (column -> value or SQL expression) to the user's task; None when the
    user has no such task."""
    result = await session.execute(
        sa.update(_tasks)
        .where(_t.id == task_id, _t.user_id == user_id)
        .values(values)
        .returning(*_tasks.c)
    )
    row = result.mappings().first()
    return dict(row) if row is not None else None


def toggled() -> Any:
    """The SQL value of "the opposite of the task's completion"."""
    return sa.not_(_t.completed)


async def delete(session: AsyncSession, *, user_id: str, task_id: int) -> Row | None:
    result = await session.execute(
        sa.delete(_tasks).where(_t.id == task_id, _t.user_id == user_id).returning(*_tasks.c)
    )
    row = result.mappings().first()
    return dict(row) if row is not None else None
