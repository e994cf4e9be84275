from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from todochat.agent.runner import AgentRuntime
from todochat.auth.dependencies import CurrentUser
from todochat.chat import service
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.config import SettingsDep
from todochat.db import DatabaseDep
from todochat.errors import error_responses
from todochat.idempotency.dependencies import IdempotencyKeyDep
from todochat.ratelimit import ChatRateLimit


async def get_runtime(request: Request) -> AgentRuntime:
    runtime: AgentRuntime = request.app.state.agent_runtime
    return runtime


RuntimeDep = Annotated[AgentRuntime, Depends(get_runtime)]

router = APIRouter(prefix="/api/{user_id}", tags=["chat"])


@router.post(
    "/chat",
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    dependencies=[ChatRateLimit],
)
async def chat(
    user: CurrentUser,
    body: ChatRequest,
    db: DatabaseDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyDep,
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
    )
