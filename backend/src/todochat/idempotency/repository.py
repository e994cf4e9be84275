"""Idempotency-key queries. Every one is filtered by the owner's user id or by a record id that
was read through one."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from todochat.logs import timed
from todochat.models import IdempotencyRecord


@timed("repo.idempotency.insert_if_absent", level=logging.DEBUG)
async def insert_if_absent(
    session: AsyncSession,
    *,
    user_id: str,
    key: str,
    request_hash: str,
    lease_owner: str,
    locked_until: datetime,
    now: datetime,
) -> int | None:
    """Create the key's record; None when it exists already.

    ON CONFLICT DO NOTHING rather than catching the unique violation: on PostgreSQL a concurrent
    insert of the same key waits here until the other transaction ends, and the transaction
    stays usable either way.
    """
    values: dict[str, Any] = {
        "user_id": user_id,
        "key": key,
        "request_hash": request_hash,
        "status": "started",
        "lease_owner": lease_owner,
        "locked_until": locked_until,
        "created_at": now,
    }
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = (
        insert.values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(table.c.id)
    )
    result = await session.execute(statement)
    created = result.scalar_one_or_none()
    return int(created) if created is not None else None


@timed("repo.idempotency.get", level=logging.DEBUG)
async def get(session: AsyncSession, *, user_id: str, key: str) -> IdempotencyRecord | None:
    result = await session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
    return result.scalar_one_or_none()


@timed("repo.idempotency.restart_expired", level=logging.DEBUG)
async def restart_expired(
    session: AsyncSession,
    *,
    record: IdempotencyRecord,
    expired_before: datetime,
    request_hash: str,
    lease_owner: str,
    locked_until: datetime,
    now: datetime,
) -> bool:
    """Reuse an expired key for a new request; False if someone else just did."""
    result = await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.id) == record.id,
            col(IdempotencyRecord.user_id) == record.user_id,
            col(IdempotencyRecord.created_at) < expired_before,
        )
        .values(
            request_hash=request_hash,
            status="started",
            response_status=None,
            response_body=None,
            conversation_id=None,
            message_id=None,
            lease_owner=lease_owner,
            locked_until=locked_until,
            created_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


@timed("repo.idempotency.take_lease", level=logging.DEBUG)
async def take_lease(
    session: AsyncSession,
    *,
    user_id: str,
    record_id: int,
    lease_owner: str,
    locked_until: datetime,
    now: datetime,
) -> bool:
    """Take over a started record whose lease ran out or was released; False if it is held."""
    lease_free = sa.or_(
        col(IdempotencyRecord.locked_until).is_(None), col(IdempotencyRecord.locked_until) <= now
    )
    result = await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.id) == record_id,
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.status) == "started",
            lease_free,
        )
        .values(lease_owner=lease_owner, locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


@timed("repo.idempotency.renew_lease", level=logging.DEBUG)
async def renew_lease(
    session: AsyncSession,
    *,
    record_id: int,
    user_id: str,
    lease_owner: str,
    locked_until: datetime,
) -> bool:
    """Extend the lease its owner holds; False when the record is no longer its to renew."""
    result = await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.id) == record_id,
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.status) == "started",
            col(IdempotencyRecord.lease_owner) == lease_owner,
        )
        .values(locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


@timed("repo.idempotency.save_progress", level=logging.DEBUG)
async def save_progress(
    session: AsyncSession,
    *,
    record_id: int,
    user_id: str,
    lease_owner: str,
    conversation_id: int,
    message_id: int,
) -> bool:
    result = await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.id) == record_id,
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.lease_owner) == lease_owner,
        )
        .values(conversation_id=conversation_id, message_id=message_id)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


@timed("repo.idempotency.finish", level=logging.DEBUG)
async def finish(
    session: AsyncSession,
    *,
    record_id: int,
    user_id: str,
    lease_owner: str,
    response_status: int,
    response_body: Any,
) -> bool:
    """Store the answer; False when the lease was lost (someone else owns the record now)."""
    result = await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.id) == record_id,
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.status) == "started",
            col(IdempotencyRecord.lease_owner) == lease_owner,
        )
        .values(
            status="finished",
            response_status=response_status,
            response_body=response_body,
            lease_owner=None,
            locked_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


@timed("repo.idempotency.release", level=logging.DEBUG)
async def release(
    session: AsyncSession, *, user_id: str, key: str, lease_owner: str, now: datetime
) -> None:
    """Give the lease up early so that a retry can resume the request at once."""
    await session.execute(
        sa.update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.status) == "started",
            col(IdempotencyRecord.lease_owner) == lease_owner,
        )
        .values(lease_owner=None, locked_until=now)
        .execution_options(synchronize_session=False)
    )


@timed("repo.idempotency.purge_created_before", level=logging.DEBUG)
async def purge_created_before(session: AsyncSession, *, before: datetime) -> int:
    # Maintenance across all users: expiry is by age alone, whoever the owner.
    result = await session.execute(
        sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < before)
    )
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


def _changed(result: Any) -> bool:
    return _rowcount(result) > 0
