"""Idempotency keys: a repeated request returns the first answer instead of acting again.

A key belongs to one user and stands for one request: its route and its validated body,
hashed. The record lives in the database, so every instance sees it, and expires after
IDEMPOTENCY_TTL_S (24 h).

- A one-transaction operation (creating a task) writes its record in the same transaction as
  its effect: the record exists if and only if the task does. A concurrent repeat of the same
  key waits on the record's unique index (PostgreSQL) or on the writer lock (SQLite) and then
  replays the stored answer.
- A chat turn spans three transactions around the model. Its record is written with the user's
  message and carries a lease. A repeat finds the answer (replay), or the turn in progress
  (wait up to IDEMPOTENCY_WAIT_S, then 409), or a turn whose owner gave up or died (lease
  released or expired): then it resumes that turn, reusing the stored message, and the tool
  calls of the turn are keyed by the turn's key so that a task is never added twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.db import Database
from todochat.errors import Conflict, Unprocessable
from todochat.idempotency import repository
from todochat.models import utcnow

log = logging.getLogger("todochat.idempotency")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeyReused(Unprocessable):
    detail = "This Idempotency-Key was already used with a different request"


class IdempotencyKeyInUse(Conflict):
    detail = "A request with this Idempotency-Key is still being processed. Retry in a few seconds."
    headers = {"Retry-After": "2"}


@dataclass
class IdempotencyKey:
    """The `Idempotency-Key` of one request, with the policy that applies to it."""

    key: str
    scope: str
    ttl_s: float = 24 * 3600
    wait_s: float = 10.0
    lease_s: float = 120.0
    # Called when the answer is a replay: the HTTP edge sets its header (dependencies.py).
    on_replay: Callable[[], None] | None = None
    replayed: bool = False

    def fingerprint(self, body: BaseModel | dict[str, Any]) -> str:
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        text = json.dumps([self.scope, payload], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def mark_replayed(self) -> None:
        self.replayed = True
        if self.on_replay is not None:
            self.on_replay()


def effect_key(scope: str, tool: str, arguments: dict[str, Any], occurrence: int) -> str:
    """The key of one tool call inside a keyed chat turn: same turn, same call, same key."""
    text = json.dumps([scope, tool, arguments, occurrence], sort_keys=True, separators=(",", ":"))
    return "effect:" + hashlib.sha256(text.encode()).hexdigest()


def new_owner() -> str:
    return uuid.uuid4().hex


# --- claiming a key --------------------------------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    record_id: int


@dataclass(frozen=True)
class Finished:
    status_code: int
    body: Any


@dataclass(frozen=True)
class Started:
    """A multi-step request under way (or abandoned) with its progress so far."""

    record_id: int
    conversation_id: int | None
    message_id: int | None


async def claim(
    session: AsyncSession, *, user_id: str, key: IdempotencyKey, request_hash: str, owner: str
) -> Claimed | Finished | Started:
    """Inside a unit of work: create the key's record, or report the state of the existing one.

    Raises IdempotencyKeyReused when the key stands for another request.
    """
    now = utcnow()
    locked_until = now + timedelta(seconds=key.lease_s)
    for _ in range(2):
        record_id = await repository.insert_if_absent(
            session,
            user_id=user_id,
            key=key.key,
            request_hash=request_hash,
            lease_owner=owner,
            locked_until=locked_until,
            now=now,
        )
        if record_id is not None:
            return Claimed(record_id)
        record = await repository.get(session, user_id=user_id, key=key.key)
        if record is not None:
            break
        # Purged between the insert and the read: insert again.
    else:
        raise IdempotencyKeyInUse()
    assert record.id is not None
    expired_before = now - timedelta(seconds=key.ttl_s)
    if record.created_at < expired_before:
        if await repository.restart_expired(
            session,
            record=record,
            expired_before=expired_before,
            request_hash=request_hash,
            lease_owner=owner,
            locked_until=locked_until,
            now=now,
        ):
            return Claimed(record.id)
        raise IdempotencyKeyInUse()
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused()
    if record.status == "finished":
        return Finished(record.response_status or 200, record.response_body)
    return Started(record.id, record.conversation_id, record.message_id)


async def take_over(
    session: AsyncSession, *, user_id: str, record_id: int, key: IdempotencyKey, owner: str
) -> bool:
    """Take a started record whose lease was released or ran out; False while it is held."""
    now = utcnow()
    return await repository.take_lease(
        session,
        user_id=user_id,
        record_id=record_id,
        lease_owner=owner,
        locked_until=now + timedelta(seconds=key.lease_s),
        now=now,
    )


async def save_progress(
    session: AsyncSession,
    *,
    record_id: int,
    user_id: str,
    owner: str,
    conversation_id: int,
    message_id: int,
) -> None:
    if not await repository.save_progress(
        session,
        record_id=record_id,
        user_id=user_id,
        lease_owner=owner,
        conversation_id=conversation_id,
        message_id=message_id,
    ):
        raise IdempotencyKeyInUse()


async def finish(
    session: AsyncSession,
    *,
    record_id: int,
    user_id: str,
    owner: str,
    status_code: int,
    body: Any,
) -> None:
    """Store the answer in the caller's transaction; a lost lease rolls the transaction back."""
    if not await repository.finish(
        session,
        record_id=record_id,
        user_id=user_id,
        lease_owner=owner,
        response_status=status_code,
        response_body=body,
    ):
        raise IdempotencyKeyInUse()


async def release(session: AsyncSession, *, user_id: str, key: str, owner: str) -> None:
    await repository.release(session, user_id=user_id, key=key, lease_owner=owner, now=utcnow())


# Releases still being retried after their request ended (kept so they are not collected).
_pending_releases: set[asyncio.Task[None]] = set()


async def release_quietly(
    db: Database, *, user_id: str, key: str, owner: str, keep_trying_s: float = 60.0
) -> None:
    """Give a lease back without failing the request: the original error is what the client
    must see. If the database is down now, keep trying in the background for a while; a
    lease never given back blocks retries of its key until it runs out."""

    async def work(session: AsyncSession) -> None:
        await release(session, user_id=user_id, key=key, owner=owner)

    try:
        await db.run(work)
        return
    except Exception as exc:
        log.warning(
            "could not release an idempotency lease yet; retrying in the background",
            extra={"operation": "idempotency.release", "error_type": type(exc).__name__},
        )

    async def later() -> None:
        deadline = time.monotonic() + keep_trying_s
        pause = 0.5
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
            try:
                await db.run(work)
                log.info("idempotency lease released", extra={"operation": "idempotency.release"})
                return
            except Exception as exc:  # still down; the lease expires on its own in the end
                log.debug(
                    "lease release failed again",
                    extra={"operation": "idempotency.release", "error_type": type(exc).__name__},
                )

    task = asyncio.create_task(later())
    _pending_releases.add(task)
    task.add_done_callback(_pending_releases.discard)


async def progress(session: AsyncSession, *, user_id: str, key: str, owner: str) -> Started | None:
    """The record's progress if `owner` holds its lease (did our claim commit?), else None."""
    record = await repository.get(session, user_id=user_id, key=key)
    if record is None or record.lease_owner != owner or record.status != "started":
        return None
    assert record.id is not None
    return Started(record.id, record.conversation_id, record.message_id)


async def is_finished(session: AsyncSession, *, user_id: str, key: str, request_hash: str) -> bool:
    """Whether the request stands answered (did our finishing commit?)."""
    record = await repository.get(session, user_id=user_id, key=key)
    return (
        record is not None and record.status == "finished" and record.request_hash == request_hash
    )


# --- one-transaction operations --------------------------------------------------------------
async def run_once(
    db: Database,
    *,
    user_id: str,
    key: IdempotencyKey | None,
    body: BaseModel,
    act: Callable[[AsyncSession], Awaitable[M]],
    result_type: type[M],
    status_code: int,
) -> M:
    """Run `act` in one unit of work, at most once per key; a repeat gets the stored answer."""
    if key is None:
        return await db.run(act)
    request_hash = key.fingerprint(body)
    owner = new_owner()

    async def work(session: AsyncSession) -> tuple[M, bool]:
        state = await claim(
            session, user_id=user_id, key=key, request_hash=request_hash, owner=owner
        )
        if isinstance(state, Finished):
            return result_type.model_validate(state.body), True
        if isinstance(state, Started):
            # Only a multi-step request (a chat turn) leaves a started record behind.
            raise IdempotencyKeyInUse()
        value = await act(session)
        await finish(
            session,
            record_id=state.record_id,
            user_id=user_id,
            owner=owner,
            status_code=status_code,
            body=value.model_dump(mode="json"),
        )
        return value, False

    async def committed(session: AsyncSession) -> tuple[M, bool] | None:
        record = await repository.get(session, user_id=user_id, key=key.key)
        if record is None or record.request_hash != request_hash or record.status != "finished":
            return None
        return result_type.model_validate(record.response_body), False

    value, replayed = await db.run_resolving(work, committed)
    if replayed:
        key.mark_replayed()
    return value


async def purge_expired(db: Database, *, ttl_s: float) -> int:
    before = utcnow() - timedelta(seconds=ttl_s)

    async def work(session: AsyncSession) -> int:
        return await repository.purge_created_before(session, before=before)

    removed = await db.run(work)
    if removed:
        log.info("expired idempotency keys purged", extra={"operation": "idempotency.purge"})
    return removed
