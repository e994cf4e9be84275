from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from todochat.auth.dependencies import CurrentUser
from todochat.conversations import service
from todochat.conversations.schemas import ConversationRead, MessageRead
from todochat.db import DatabaseDep
from todochat.errors import error_responses

ConversationId = Annotated[int, Path(gt=0, le=2**31 - 1, description="The conversation's id.")]

router = APIRouter(prefix="/api/{user_id}/conversations", tags=["conversations"])


@router.get("", responses=error_responses(401, 403, 422, 503))
async def list_conversations(
    user: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many.")] = 50,
) -> list[ConversationRead]:
    """List the user's conversations, most recently active first."""
    return await db.run(service.list_conversations, user_id=user.id, limit=limit)


@router.get("/{conversation_id}/messages", responses=error_responses(401, 403, 404, 422, 503))
async def list_messages(
    user: CurrentUser,
    conversation_id: ConversationId,
    db: DatabaseDep,
    after: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Only messages with a larger id (paging).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 500,
) -> list[MessageRead]:
    """A conversation's messages, oldest first, each with its tool calls."""
    return await db.run(
        service.list_messages,
        user_id=user.id,
        conversation_id=conversation_id,
        after_id=after,
        limit=limit,
    )
