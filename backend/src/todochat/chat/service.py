"""One stateless chat turn: begin → run the agent → finish, around a turn ledger.

Three short units of work surround the model, none held while it thinks: (1) the ledger
stores the user's message (and claims the Idempotency-Key); (2) the agent runs, each tool
call in its own unit of work; (3) the ledger stores the reply with its tool calls (and the
key's answer). Any instance can serve any turn; nothing lives in memory between turns.
How keyed turns are replayed, waited for and resumed is the ledger's business (chat/ledger/).

`chat_turn` answers when the turn is over; `stream_turn` begins the turn the same way, then
runs the rest as a task of its own and hands its events over as they happen. The task does not
depend on the client: a client that goes away mid-stream still gets its turn stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from todochat.agent.events import EventSink, StepStarted, TextDelta, ToolFinished, ToolStarted
from todochat.agent.runner import AgentRuntime
from todochat.agent.turn import ModelFailure
from todochat.agent.turn_limits import account
from todochat.agent.upstream import UpstreamFailure
from todochat.chat.ledger import Admission, KeyedLedger, OpenTurn, Replay, TurnLedger
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations.schemas import ToolCall
from todochat.conversations.service import ConversationBusy
from todochat.db import Database
from todochat.errors import AppError, DatabaseUnavailable, ModelMisconfigured, ModelUnavailable
from todochat.idempotency.service import IdempotencyKey, IdempotencyKeyInUse
from todochat.logs import bind
from todochat.ratelimit import RateLimited

log = logging.getLogger("todochat.chat")

INTERNAL_ERROR = "Internal server error"


@dataclass(frozen=True)
class Completed:
    """A streamed turn's end: the answer, as the JSON turn would have given it."""

    response: ChatResponse


@dataclass(frozen=True)
class Failed:
    """A streamed turn that failed after it began: what the JSON turn's error would say, and
    whether a retry can help (not after a configuration error, M1)."""

    detail: str
    retry: bool = True


@dataclass(frozen=True)
class Heartbeat:
    """Nothing happened for a while; the stream says it is alive."""


StreamEvent = StepStarted | TextDelta | ToolStarted | ToolFinished | Completed | Failed | Heartbeat


@dataclass(frozen=True)
class StreamedTurn:
    conversation_id: int
    events: AsyncIterator[StreamEvent]
    # The stored user message the turn answers (unknown for a replay).
    message_id: int | None = None


async def chat_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    idempotency_key: IdempotencyKey | None = None,
    admit: Admission | None = None,
) -> ChatResponse:
    """One turn. `admit` (the chat budget) runs once per new turn, after the request proved
    valid and before anything is stored: a rejected request, a replay, a resumed turn or a
    wait for a running one spends nothing."""
    ledger = _ledger(
        db,
        runtime.settings.chat_turn_lease_s,
        user_id,
        request,
        history_limit,
        idempotency_key,
        admit,
    )
    async with runtime.lanes.turn():
        turn = await _begin(runtime, ledger, idempotency_key)
        if isinstance(turn, Replay):
            return turn.response
        return await _complete(runtime, ledger, turn)


async def stream_turn(
    *,
    db: Database,
    runtime: AgentRuntime,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    heartbeat_s: float,
    idempotency_key: IdempotencyKey | None = None,
    admit: Admission | None = None,
    retry_of: int | None = None,
) -> StreamedTurn:
    """Begin the turn (its errors are the caller's, before any byte is sent), then stream it.
    `retry_of` (a stored user message of `request.conversation_id`, without a key) answers that
    message again instead of storing a new one."""
    if retry_of is not None and (idempotency_key is not None or request.conversation_id is None):
        raise ValueError("a retry names its conversation and has no Idempotency-Key")
    ledger = _ledger(
        db,
        runtime.settings.chat_turn_lease_s,
        user_id,
        request,
        history_limit,
        idempotency_key,
        admit,
        retry_of,
    )
    async with runtime.lanes.turn() as lane:
        turn = await _begin(runtime, ledger, idempotency_key)
        if isinstance(turn, Replay):
            return StreamedTurn(turn.response.conversation_id, _replayed(turn.response))
        queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
        # The task goes on with the turn's lane: no second wait for one before the model.
        lane.hand_over(runtime.detach(_stream(runtime, ledger, turn, queue)))
    return StreamedTurn(turn.conversation_id, _follow(queue, heartbeat_s), turn.message_id)


def _ledger(
    db: Database,
    lease_s: float,
    user_id: str,
    request: ChatRequest,
    history_limit: int,
    key: IdempotencyKey | None,
    admit: Admission | None,
    retry_of: int | None = None,
) -> TurnLedger:
    if key is None:
        return TurnLedger(
            db=db,
            user_id=user_id,
            request=request,
            history_limit=history_limit,
            lease_s=lease_s,
            admit=admit,
            retry_of=retry_of,
        )
    return KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=history_limit, key=key, admit=admit
    )


async def _begin(
    runtime: AgentRuntime, ledger: TurnLedger, key: IdempotencyKey | None
) -> OpenTurn | Replay:
    try:
        turn = await ledger.begin()
    except Exception as exc:
        _count(runtime, _outcome(exc))
        raise
    if isinstance(turn, Replay):
        if key is not None:
            key.mark_replayed()
        _count(runtime, "replayed")
    return turn


async def _complete(
    runtime: AgentRuntime,
    ledger: TurnLedger,
    turn: OpenTurn,
    on_event: EventSink | None = None,
) -> ChatResponse:
    """The agent's part of a begun turn, and its outcome written to the ledger."""
    started = time.perf_counter()
    bind(conversation_id=turn.conversation_id)
    try:
        async with ledger:
            try:
                result = await runtime.run_turn(
                    user_id=ledger.user_id,
                    history=turn.history,
                    message=ledger.request.message,
                    effect_scope=turn.effect_scope,
                    on_event=on_event,
                )
            except ModelFailure as failure:
                error = _model_error(failure.failure, failure.tool_calls)
                _log_model_failure(failure.failure, len(failure.tool_calls))
                await ledger.fail(turn, failure.tool_calls, reply=error.told)
                raise error from failure
            response = ChatResponse(
                conversation_id=turn.conversation_id,
                response=result.reply,
                tool_calls=result.tool_calls,
            )
            await ledger.finish(turn, response)
    except Exception as exc:
        if isinstance(exc, AppError) and exc.conversation_id is None:
            # The conversation exists: the client goes on in it, whatever failed.
            exc.conversation_id = turn.conversation_id
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
            "streamed": on_event is not None,
        },
    )
    return response


def _model_error(failure: UpstreamFailure, tool_calls: list[ToolCall]) -> AppError:
    """The answer to a failed model upstream (M1): 503 with the upstream's wait when it is
    temporary, 502 when the service is misconfigured; either says what the tools did, beside
    the contract's sentence."""
    error: AppError
    if failure.temporary:
        error = ModelUnavailable(headers={"Retry-After": str(failure.retry_after_s)})
    else:
        error = ModelMisconfigured()
    error.done = account(tool_calls) or None
    return error


def _log_model_failure(failure: UpstreamFailure, tool_calls: int) -> None:
    """One line per failed turn; a configuration error at ERROR, with what the upstream said."""
    log.log(
        logging.WARNING if failure.temporary else logging.ERROR,
        "model upstream failed",
        extra={
            "operation": "chat.model",
            "outcome": failure.kind,
            "error_type": failure.error_type,
            "upstream_status": failure.status,
            "upstream_path": failure.path,
            "upstream_body": failure.excerpt,
            "retry_after_s": failure.retry_after_s if failure.temporary else None,
            "tool_calls": tool_calls,
        },
    )


async def _stream(
    runtime: AgentRuntime,
    ledger: TurnLedger,
    turn: OpenTurn,
    queue: asyncio.Queue[StreamEvent],
) -> None:
    """A streamed turn's task: the same completion as a JSON turn, its end put on the queue.
    It runs with the lane its turn began with (`hand_over`)."""
    try:
        response = await _complete(runtime, ledger, turn, on_event=queue.put_nowait)
    except AppError as exc:
        queue.put_nowait(Failed(exc.told, retry=not isinstance(exc, ModelMisconfigured)))
    except Exception as exc:
        # What the JSON turn's 500 would be; the type and place are logged, never shown.
        log.error(
            "streamed turn failed",
            extra={"operation": "chat.stream", "error_type": type(exc).__name__},
        )
        queue.put_nowait(Failed(INTERNAL_ERROR))
    else:
        queue.put_nowait(Completed(response))


async def _follow(
    queue: asyncio.Queue[StreamEvent], heartbeat_s: float
) -> AsyncIterator[StreamEvent]:
    while True:
        # An event already queued is taken at once; only an empty queue is waited on, with a
        # timer and no task (asyncio.wait_for starts a task per call, in Python 3.11): one
        # task and one loop pass fewer per chunk of the stream (P12).
        if queue.empty():
            try:
                async with asyncio.timeout(heartbeat_s):
                    event = await queue.get()
            except TimeoutError:
                yield Heartbeat()
                continue
        else:
            event = queue.get_nowait()
        yield event
        if isinstance(event, Completed | Failed):
            return


async def _replayed(response: ChatResponse) -> AsyncIterator[StreamEvent]:
    """A finished turn told again as a stream: its tool calls, then its reply."""
    yield StepStarted()
    for call in response.tool_calls:
        yield ToolStarted(call_id=call.id, name=call.name, arguments=call.arguments)
        yield ToolFinished(call=call)
    yield TextDelta(text_id="replay", delta=response.response)
    yield Completed(response)


def _outcome(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, ModelUnavailable | ModelMisconfigured):
        return "model_error"
    if isinstance(exc, DatabaseUnavailable):
        return "db_error"
    if isinstance(exc, IdempotencyKeyInUse | ConversationBusy):
        return "busy"
    return "error"


def _count(runtime: AgentRuntime, outcome: str) -> None:
    if runtime.metrics is not None:
        runtime.metrics.chat_turns.labels(outcome).inc()
