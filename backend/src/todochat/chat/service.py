"""One stateless chat turn: begin → run the agent → finish, around a turn ledger.

Three short units of work surround the model, none held while it thinks: (1) the ledger
stores the user's message (and claims the Idempotency-Key); (2) the agent runs, each tool
call in its own unit of work; (3) the ledger stores the reply with its tool calls (and the
key's answer). Any instance can serve any turn; nothing lives in memory between turns.
How keyed turns are replayed, waited for and resumed is the ledger's business (ledger.py).
"""

from __future__ import annotations

import logging
import time

from todochat.agent.runner import AgentRuntime, ModelFailure, TurnResult
from todochat.chat.ledger import KeyedLedger, OpenTurn, Replay, TurnLedger
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.db import Database
from todochat.errors import DatabaseUnavailable, ModelUnavailable
from todochat.idempotency.service import IdempotencyKey, IdempotencyKeyInUse
from todochat.logs import bind

log = logging.getLogger("todochat.chat")


def open_ledger(
    *,
    db: Database,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    idempotency_key: IdempotencyKey | None,
) -> TurnLedger:
    if idempotency_key is None:
        return TurnLedger(db=db, user_id=user_id, request=request, history_limit=history_limit)
    return KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=history_limit, key=idempotency_key
    )


async def chat_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    idempotency_key: IdempotencyKey | None = None,
) -> ChatResponse:
    started = time.perf_counter()
    ledger = open_ledger(
        db=db,
        user_id=user_id,
        request=request,
        history_limit=history_limit,
        idempotency_key=idempotency_key,
    )
    try:
        async with ledger:
            turn = await ledger.begin()
            if isinstance(turn, Replay):
                if idempotency_key is not None:
                    idempotency_key.mark_replayed()
                _count(runtime, "replayed")
                return turn.response
            response, result = await _run(
                runtime=runtime, ledger=ledger, user_id=user_id, turn=turn
            )
    except Exception as exc:
        _count(runtime, _outcome(exc))
        raise
    _count(runtime, "ok")
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
            "resumed": turn.resumed,
        },
    )
    return response


async def _run(
    *, runtime: AgentRuntime, ledger: TurnLedger, user_id: str, turn: OpenTurn
) -> tuple[ChatResponse, TurnResult]:
    """The agent's part of a begun turn, and its outcome written to the ledger."""
    bind(conversation_id=turn.conversation_id)
    try:
        result = await runtime.run_turn(
            user_id=user_id,
            history=turn.history,
            message=ledger.request.message,
            effect_scope=turn.effect_scope,
        )
    except ModelFailure as failure:
        log.error(
            "model upstream failed",
            extra={
                "operation": "chat.model",
                "outcome": "model_error",
                "error_type": failure.reason,
                "tool_calls": len(failure.tool_calls),
            },
        )
        await ledger.fail(turn, failure.tool_calls)
        raise ModelUnavailable() from failure
    response = ChatResponse(
        conversation_id=turn.conversation_id, response=result.reply, tool_calls=result.tool_calls
    )
    await ledger.finish(turn, response)
    return response, result


def _outcome(exc: Exception) -> str:
    if isinstance(exc, ModelUnavailable):
        return "model_error"
    if isinstance(exc, DatabaseUnavailable):
        return "db_error"
    if isinstance(exc, IdempotencyKeyInUse):
        return "busy"
    return "error"


def _count(runtime: AgentRuntime, outcome: str) -> None:
    if runtime.metrics is not None:
        runtime.metrics.chat_turns.labels(outcome).inc()
