"""Conversations and their messages: the chat's persistence. Each function runs inside the
caller's unit of work (`Database.run`), which commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.conversations import repository
from todochat.conversations.schemas import ConversationRead, MessageRead, ToolCall, TurnStart
from todochat.errors import NotFound
from todochat.logs import timed
from todochat.models import Conversation, utcnow


class ConversationNotFound(NotFound):
    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"Conversation {conversation_id} not found")


async def _owned(session: AsyncSession, *, user_id: str, conversation_id: int) -> Conversation:
    conversation = await repository.get(session, user_id=user_id, conversation_id=conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


@timed("conversations.start_turn")
async def start_turn(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int | None,
    message: str,
    history_limit: int,
) -> TurnStart:
    """Find or create the conversation, read its recent history, store the user's message."""
    now = utcnow()
    if conversation_id is None:
        cid = await repository.create(session, user_id=user_id, at=now)
        history: list[MessageRead] = []
    else:
        cid = conversation_id
        # Ownership check and touch in one statement, before anything is read.
        if not await repository.touch_owned(session, user_id=user_id, conversation_id=cid, at=now):
            raise ConversationNotFound(cid)
        rows = await repository.recent_messages(
            session, user_id=user_id, conversation_id=cid, limit=history_limit
        )
        history = [MessageRead.model_validate(row) for row in rows]
    message_id = await repository.insert_message(
        session, user_id=user_id, conversation_id=cid, role="user", content=message, at=now
    )
    return TurnStart(conversation_id=cid, message_id=message_id, history=history)


@timed("conversations.resume_turn")
async def resume_turn(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    message_id: int,
    history_limit: int,
) -> TurnStart:
    """A turn whose user message is stored already, with the history that preceded it."""
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    rows = await repository.recent_messages(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        limit=history_limit,
        before_id=message_id,
    )
    return TurnStart(
        conversation_id=conversation_id,
        message_id=message_id,
        history=[MessageRead.model_validate(row) for row in rows],
    )


@timed("conversations.finish_turn")
async def finish_turn(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    reply: str,
    tool_calls: list[ToolCall],
) -> MessageRead:
    """Store the assistant's reply with the tool calls it made."""
    now = utcnow()
    stored = [call.model_dump(mode="json") for call in tool_calls] or None
    message_id = await repository.insert_message(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        role="assistant",
        content=reply,
        tool_calls=stored,
        at=now,
    )
    await repository.touch(session, user_id=user_id, conversation_id=conversation_id, at=now)
    return MessageRead(
        id=message_id,
        role="assistant",
        content=reply,
        tool_calls=tool_calls or None,
        created_at=now,
    )


@timed("conversations.list")
async def list_conversations(
    session: AsyncSession, *, user_id: str, limit: int
) -> list[ConversationRead]:
    rows = await repository.list_for_user(session, user_id=user_id, limit=limit)
    return [ConversationRead.model_validate(c) for c in rows]


@timed("conversations.messages")
async def list_messages(
    session: AsyncSession, *, user_id: str, conversation_id: int, after_id: int, limit: int
) -> list[MessageRead]:
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    rows = await repository.messages_after(
        session, user_id=user_id, conversation_id=conversation_id, after_id=after_id, limit=limit
    )
    return [MessageRead.model_validate(m) for m in rows]
