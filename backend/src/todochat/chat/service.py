"""One stateless chat turn: three short units of work around the model, none held while it
thinks. (1) check the conversation, read the last messages, store the user's message;
(2) the agent runs, each tool call in its own unit of work; (3) store the reply with its tool
calls. Any instance can serve any turn; nothing lives in memory between turns.

With an Idempotency-Key, (1) also claims the key (with a lease) and (3) also stores the answer,
each in the same transaction, so the key's record always tells how far the turn got. A repeat
replays a finished turn, waits for a running one, and resumes one that was abandoned (its
owner failed and released the lease, or died and the lease ran out). See idempotency.service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from agents import TResponseInputItem
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.agent.runner import AgentRuntime, ModelFailure, TurnResult
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import MessageRead, ToolCall, TurnStart
from todochat.db import Database
from todochat.errors import DatabaseUnavailable, ModelUnavailable
from todochat.idempotency import service as idempotency
from todochat.idempotency.service import (
    Claimed,
    Finished,
    IdempotencyKey,
    IdempotencyKeyInUse,
    Started,
)
from todochat.logs import bind
from todochat.ratelimit import RateLimited
from todochat.schemas import without_bad_characters

log = logging.getLogger("todochat.chat")


def history_as_input(history: list[MessageRead]) -> list[TResponseInputItem]:
    """Stored messages as model input; earlier tool calls stay visible, paired by call id."""
    items: list[TResponseInputItem] = []
    for message in history:
        if message.role == "user":
            items.append({"role": "user", "content": message.content})
            continue
        for call in message.tool_calls or []:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                }
            )
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.id,
                    "output": json.dumps(call.result),
                }
            )
        items.append({"role": "assistant", "content": message.content})
    return items


@dataclass(frozen=True)
class _Lease:
    """This request's hold on a keyed turn."""

    key: IdempotencyKey
    request_hash: str
    record_id: int
    owner: str
    resumed: bool = False


@dataclass(frozen=True)
class _Replay:
    body: ChatResponse


def _count(runtime: AgentRuntime, outcome: str) -> None:
    if runtime.metrics is not None:
        runtime.metrics.chat_turns.labels(outcome).inc()


async def chat_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    idempotency_key: IdempotencyKey | None = None,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> ChatResponse:
    """One turn. `admit` (the chat budget) runs once per new turn, after the request proved
    valid and before anything is stored: a rejected request, a replay, a resumed turn or a
    wait for a running one spends nothing."""
    started = time.perf_counter()
    try:
        lease: _Lease | None = None
        if idempotency_key is None:
            turn = await conversation_service.start_turn(
                db=db,
                user_id=user_id,
                conversation_id=request.conversation_id,
                message=request.message,
                history_limit=history_limit,
                admit=admit,
            )
        else:
            claimed = await _claim_turn(
                db=db,
                user_id=user_id,
                request=request,
                key=idempotency_key,
                history_limit=history_limit,
                admit=admit,
            )
            if isinstance(claimed, _Replay):
                idempotency_key.mark_replayed()
                _count(runtime, "replayed")
                return claimed.body
            turn, lease = claimed
        answer = await _run_turn(
            db=db, runtime=runtime, user_id=user_id, request=request, turn=turn, lease=lease
        )
    except ModelUnavailable:
        _count(runtime, "model_error")
        raise
    except DatabaseUnavailable:
        _count(runtime, "db_error")
        raise
    except IdempotencyKeyInUse:
        _count(runtime, "busy")
        raise
    except RateLimited:
        _count(runtime, "rate_limited")
        raise
    except Exception:
        _count(runtime, "error")
        raise
    _count(runtime, "ok")
    result, response = answer
    log.info(
        "chat turn",
        extra={
            "operation": "chat.turn",
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "outcome": "ok",
            "model_ms": round(result.model_ms, 2),
            "tool_ms": round(result.tool_ms, 2),
            "model_calls": result.model_calls,
            "tool_calls": len(result.tool_calls),
            "resumed": lease is not None and lease.resumed,
        },
    )
    return response


async def _run_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    turn: TurnStart,
    lease: _Lease | None,
) -> tuple[TurnResult, ChatResponse]:
    bind(conversation_id=turn.conversation_id)
    try:
        result = await runtime.run_turn(
            user_id=user_id,
            history=history_as_input(turn.history),
            message=request.message,
            effect_scope=f"{lease.key.key}:{lease.request_hash}" if lease else None,
        )
    except ModelFailure as failure:
        failure.tool_calls = without_bad_characters(failure.tool_calls)
        log.error(
            "model upstream failed",
            extra={
                "operation": "chat.model",
                "outcome": "model_error",
                "error_type": failure.reason,
                "tool_calls": len(failure.tool_calls),
            },
        )
        # Keep the conversation consistent: what the tools already did is recorded with it,
        # and the key is let go so that the client's retry resumes this turn.
        await _store_failure(db=db, user_id=user_id, turn=turn, failure=failure, lease=lease)
        raise ModelUnavailable() from failure
    except Exception:
        if lease is not None:
            await _release_quietly(db=db, user_id=user_id, lease=lease)
        raise
    result = replace(
        result,
        reply=without_bad_characters(result.reply),
        tool_calls=without_bad_characters(result.tool_calls),
    )
    response = ChatResponse(
        conversation_id=turn.conversation_id,
        response=result.reply,
        tool_calls=[ToolCall.model_validate(c) for c in result.tool_calls],
    )
    try:
        await _store_reply(
            db=db, user_id=user_id, turn=turn, result=result, response=response, lease=lease
        )
    except DatabaseUnavailable:
        if lease is not None:
            await _release_quietly(db=db, user_id=user_id, lease=lease)
        raise
    return result, response


async def _claim_turn(
    *,
    db: Database,
    user_id: str,
    request: ChatRequest,
    key: IdempotencyKey,
    history_limit: int,
    admit: Callable[[], Awaitable[None]] | None,
) -> tuple[TurnStart, _Lease] | _Replay:
    """Claim the key and start the turn in one transaction, or replay, resume or wait."""
    request_hash = key.fingerprint(request)
    owner = idempotency.new_owner()
    deadline = time.monotonic() + key.wait_s
    pause = 0.05

    async def work(session: AsyncSession) -> tuple[TurnStart, _Lease] | _Replay | None:
        state = await idempotency.claim(
            session, user_id=user_id, key=key, request_hash=request_hash, owner=owner
        )
        if isinstance(state, Finished):
            return _Replay(ChatResponse.model_validate(state.body))
        if isinstance(state, Claimed):
            turn = await conversation_service.open_turn(
                session,
                user_id=user_id,
                conversation_id=request.conversation_id,
                message=request.message,
                history_limit=history_limit,
                admit=admit,
            )
            await idempotency.save_progress(
                session,
                record_id=state.record_id,
                user_id=user_id,
                owner=owner,
                conversation_id=turn.conversation_id,
                message_id=turn.message_id,
            )
            return turn, _Lease(key, request_hash, state.record_id, owner)
        assert isinstance(state, Started)
        record = state.record
        if not await idempotency.take_over(session, record=record, key=key, owner=owner):
            return None  # its owner is still at work
        assert record.id is not None
        lease = _Lease(key, request_hash, record.id, owner, resumed=True)
        if record.conversation_id is None or record.message_id is None:
            return None  # cannot happen: progress is saved with the claim
        log.warning(
            "resuming an abandoned chat turn",
            extra={"operation": "chat.resume", "conversation_id": record.conversation_id},
        )
        turn = await conversation_service.reopen_turn(
            session,
            user_id=user_id,
            conversation_id=record.conversation_id,
            message_id=record.message_id,
            history_limit=history_limit,
        )
        return turn, lease

    async def committed(session: AsyncSession) -> tuple[TurnStart, _Lease] | _Replay | None:
        # Our claim is durable if the record names us as its owner.
        record = await idempotency.get(session, user_id=user_id, key=key.key)
        if record is None or record.lease_owner != owner or record.message_id is None:
            return None
        assert record.id is not None and record.conversation_id is not None
        turn = await conversation_service.reopen_turn(
            session,
            user_id=user_id,
            conversation_id=record.conversation_id,
            message_id=record.message_id,
            history_limit=history_limit,
        )
        return turn, _Lease(key, request_hash, record.id, owner)

    while True:
        try:
            outcome = await db.run(work, resolve=committed)
        except DatabaseUnavailable:
            # The claim may have committed without our knowing: give it back, if it is ours.
            await idempotency.release_quietly(
                db, user_id=user_id, key=key.key, owner=owner, keep_trying_s=key.lease_s
            )
            raise
        if outcome is not None:
            return outcome
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInUse()
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def _store_reply(
    *,
    db: Database,
    user_id: str,
    turn: TurnStart,
    result: TurnResult,
    response: ChatResponse,
    lease: _Lease | None,
) -> None:
    if lease is None:
        await conversation_service.finish_turn(
            db=db,
            user_id=user_id,
            conversation_id=turn.conversation_id,
            reply=result.reply,
            tool_calls=result.tool_calls,
        )
        return

    async def work(session: AsyncSession) -> bool:
        await conversation_service.add_reply(
            session,
            user_id=user_id,
            conversation_id=turn.conversation_id,
            reply=result.reply,
            tool_calls=result.tool_calls,
        )
        await idempotency.finish(
            session,
            record_id=lease.record_id,
            user_id=user_id,
            owner=lease.owner,
            status_code=200,
            body=response.model_dump(mode="json"),
        )
        return True

    async def committed(session: AsyncSession) -> bool | None:
        record = await idempotency.get(session, user_id=user_id, key=lease.key.key)
        if record is None or record.status != "finished":
            return None
        return True if record.request_hash == lease.request_hash else None

    await db.run(work, resolve=committed)


async def _store_failure(
    *, db: Database, user_id: str, turn: TurnStart, failure: ModelFailure, lease: _Lease | None
) -> None:
    async def work(session: AsyncSession) -> None:
        await conversation_service.add_reply(
            session,
            user_id=user_id,
            conversation_id=turn.conversation_id,
            reply=ModelUnavailable.detail,
            tool_calls=failure.tool_calls,
        )
        if lease is not None:
            await idempotency.release(
                session, user_id=user_id, key=lease.key.key, owner=lease.owner
            )

    try:
        await db.run(work)
    except DatabaseUnavailable:
        if lease is not None:
            await _release_quietly(db=db, user_id=user_id, lease=lease)
        raise


async def _release_quietly(*, db: Database, user_id: str, lease: _Lease) -> None:
    await idempotency.release_quietly(
        db, user_id=user_id, key=lease.key.key, owner=lease.owner, keep_trying_s=lease.key.lease_s
    )
