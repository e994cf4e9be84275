"""Task queries. Every one is filtered by the owner's user id: not yours == not there.

Core statements on the table, each returning the task's row: a write is one statement (an
UPDATE or DELETE ... RETURNING checks the owner and acts at once). The statements the agent's
tools run on every turn are built once with bound parameters: building a statement and its
cache key on each call cost more CPU than running it. (Parameters are named unlike the
columns: SQLAlchemy reserves column names in INSERT and UPDATE.)
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.logs import timed
from todochat.models import Task
from todochat.tasks.schemas import TaskStatus

Row = dict[str, Any]

_tasks: sa.Table = Task.__table__  # type: ignore[attr-defined]
_t = _tasks.c
_OWNED = sa.and_(_t.id == sa.bindparam("tid"), _t.user_id == sa.bindparam("owner"))
_NOW = sa.bindparam("at", type_=_t.updated_at.type)


def _listing(status: TaskStatus, *, after: bool) -> sa.Select[Any]:
    """One page, newest first: keyset on the id (`after` pages past a given id)."""
    conditions: list[sa.ColumnElement[bool]] = [_t.user_id == sa.bindparam("owner")]
    if status is not TaskStatus.all:
        conditions.append(_t.completed.is_(status is TaskStatus.completed))
    if after:
        # BIGINT: a cursor can name any 32-bit position, past the largest INTEGER id.
        conditions.append(_t.id < sa.bindparam("before", type_=sa.BigInteger()))
    return (
        sa.select(_tasks)
        .where(*conditions)
        .order_by(_t.id.desc())
        .limit(sa.bindparam("n", type_=sa.Integer()))
    )


_LIST = {
    (status, after): _listing(status, after=after)
    for status in TaskStatus
    for after in (False, True)
}
_GET = sa.select(_tasks).where(_OWNED)
_ADD = (
    sa.insert(_tasks)
    .values(
        user_id=sa.bindparam("owner"),
        title=sa.bindparam("p_title"),
        description=sa.bindparam("p_description"),
        completed=False,
        created_at=sa.bindparam("at", type_=_t.created_at.type),
        updated_at=_NOW,
    )
    .returning(*_tasks.c)
)
_SET_COMPLETED = (
    sa.update(_tasks)
    .where(_OWNED)
    .values(completed=sa.bindparam("p_completed", type_=sa.Boolean()), updated_at=_NOW)
    .returning(*_tasks.c)
)
_TOGGLE = (
    sa.update(_tasks)
    .where(_OWNED)
    .values(completed=sa.not_(_t.completed), updated_at=_NOW)
    .returning(*_tasks.c)
)
_DELETE = sa.delete(_tasks).where(_OWNED).returning(*_tasks.c)


def _one(result: sa.Result[Any]) -> Row | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None


@timed("repo.tasks.list_for_user", level=logging.DEBUG)
async def list_for_user(
    session: AsyncSession,
    *,
    user_id: str,
    status: TaskStatus = TaskStatus.all,
    limit: int,
    before_id: int | None = None,
) -> list[Row]:
    """At most `limit` of the user's tasks, newest first; with `before_id`, only older ones."""
    params: dict[str, Any] = {"owner": user_id, "n": limit}
    if before_id is not None:
        params["before"] = before_id
    result = await session.execute(_LIST[status, before_id is not None], params)
    return [dict(row) for row in result.mappings()]


@timed("repo.tasks.get", level=logging.DEBUG)
async def get(session: AsyncSession, *, user_id: str, task_id: int) -> Row | None:
    return _one(await session.execute(_GET, {"owner": user_id, "tid": task_id}))


@timed("repo.tasks.add", level=logging.DEBUG)
async def add(
    session: AsyncSession, *, user_id: str, title: str, description: str | None, at: datetime
) -> Row:
    result = await session.execute(
        _ADD, {"owner": user_id, "p_title": title, "p_description": description, "at": at}
    )
    return dict(result.mappings().one())


@timed("repo.tasks.set_completed", level=logging.DEBUG)
async def set_completed(
    session: AsyncSession, *, user_id: str, task_id: int, completed: bool | None, at: datetime
) -> Row | None:
    """Set the completion (or toggle it when `completed` is None); None when the user has no
    such task."""
    params: dict[str, Any] = {"owner": user_id, "tid": task_id, "at": at}
    if completed is None:
        return _one(await session.execute(_TOGGLE, params))
    return _one(await session.execute(_SET_COMPLETED, {**params, "p_completed": completed}))


@timed("repo.tasks.update", level=logging.DEBUG)
async def update(
    session: AsyncSession, *, user_id: str, task_id: int, changes: dict[str, Any], at: datetime
) -> Row | None:
    """Apply `changes` (column -> value) to the user's task; None when there is no such task.

    `updated_at` moves to `at` only when a value actually changes (D9): the comparison runs in
    the same statement, against the row as it was."""
    if not changes:
        return await get(session, user_id=user_id, task_id=task_id)
    differs = sa.or_(*(_t[name].is_distinct_from(value) for name, value in changes.items()))
    stamp = sa.case((differs, sa.literal(at, type_=_t.updated_at.type)), else_=_t.updated_at)
    result = await session.execute(
        sa.update(_tasks)
        .where(_t.id == task_id, _t.user_id == user_id)
        .values({**changes, "updated_at": stamp})
        .returning(*_tasks.c)
    )
    return _one(result)


@timed("repo.tasks.delete", level=logging.DEBUG)
async def delete(session: AsyncSession, *, user_id: str, task_id: int) -> Row | None:
    return _one(await session.execute(_DELETE, {"owner": user_id, "tid": task_id}))
