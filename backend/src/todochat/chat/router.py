from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from todochat.agent.runner import AgentRuntime
from todochat.auth.dependencies import CurrentUser
from todochat.chat import service, ui_stream
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.config import SettingsDep
from todochat.db import DatabaseDep
from todochat.errors import error_responses
from todochat.idempotency.dependencies import ChatTurnKeyDep
from todochat.idempotency.service import REPLAYED_HEADER
from todochat.ratelimit import ChatBudget


async def get_runtime(request: Request) -> AgentRuntime:
    runtime: AgentRuntime = request.app.state.agent_runtime
    return runtime


RuntimeDep = Annotated[AgentRuntime, Depends(get_runtime)]

router = APIRouter(prefix="/api/{user_id}", tags=["chat"])

_ERRORS = error_responses(401, 403, 404, 409, 413, 422, 429, 502, 503)


@router.post("/chat", responses=_ERRORS)
async def chat(
    user: CurrentUser,
    budget: ChatBudget,
    body: ChatRequest,
    db: DatabaseDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    idempotency_key: ChatTurnKeyDep,
) -> ChatResponse:
    """Send a message to the assistant; it acts on the user's tasks and answers.

    Send an `Idempotency-Key` to make retries safe: a repeat returns the first answer, waits
    for a turn still running (409 if it takes longer than a few seconds), or finishes a turn
    that failed half-way without storing the message or adding a task twice.
    """
    return await service.chat_turn(
        db=db,
        runtime=runtime,
        user_id=user.id,
        request=body,
        history_limit=settings.chat_history_limit,
        idempotency_key=idempotency_key,
        admit=budget.spend,
    )


@router.post(
    "/chat/stream",
    responses={
        200: {
            "content": {ui_stream.MEDIA_TYPE: {}},
            "description": "The turn as Server-Sent Events (AI SDK UI message stream v1)",
        },
        **_ERRORS,
    },
    response_class=StreamingResponse,
)
async def chat_stream(
    user: CurrentUser,
    budget: ChatBudget,
    body: ChatRequest,
    db: DatabaseDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    idempotency_key: ChatTurnKeyDep,
) -> StreamingResponse:
    """The chat turn of `POST /chat`, streamed while it happens, in the Vercel AI SDK's UI
    message stream protocol (`useChat` reads it). The conversation id arrives first, as
    message metadata of the `start` chunk.

    Errors before the stream starts are the JSON errors of `POST /chat`; a failure after it
    ends the stream with an `error` chunk. An `Idempotency-Key` is shared with `POST /chat`:
    a repeat of a finished turn replays it, as a stream here or as JSON there. A client that
    disconnects loses nothing: the turn runs to its end and is stored.
    """
    turn = await service.stream_turn(
        db=db,
        runtime=runtime,
        user_id=user.id,
        request=body,
        history_limit=settings.chat_history_limit,
        heartbeat_s=settings.chat_stream_heartbeat_s,
        idempotency_key=idempotency_key,
        admit=budget.spend,
    )
    headers = dict(ui_stream.HEADERS)
    if idempotency_key is not None and idempotency_key.replayed:
        headers[REPLAYED_HEADER] = "true"
    return StreamingResponse(
        ui_stream.encode(turn), media_type=ui_stream.MEDIA_TYPE, headers=headers
    )
