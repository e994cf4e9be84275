"""Conversation and message queries, every one filtered by the owner's user id.

The statements of a chat turn (`create`, `touch_owned`, `recent_messages`, `insert_message`,
`touch`) are Core statements on the tables: a turn runs them on every request, and the ORM's
unit of work (identity map, instance state, flush ordering) costs more than the query itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from todochat.models import Conversation, Message

_conversations: sa.Table = Conversation.__table__  # type: ignore[attr-defined]
_messages: sa.Table = Message.__table__  # type: ignore[attr-defined]


async def get(session: AsyncSession, *, user_id: str, conversation_id: int) -> Conversation | None:
    result = await session.execute(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    return result.scalar_one_or_none()


async def create(session: AsyncSession, *, user_id: str, at: datetime) -> int:
    """A new conversation of this user; returns its id."""
    result = await session.execute(
        sa.insert(_conversations)
        .values(user_id=user_id, created_at=at, updated_at=at)
        .returning(_conversations.c.id)
    )
    conversation_id: int = result.scalar_one()
    return conversation_id


async def touch_owned(
    session: AsyncSession, *, user_id: str, conversation_id: int, at: datetime
) -> bool:
    """Mark the conversation active if this user owns it: the ownership check and the touch in
    one statement. False when there is no such conversation of this user."""
    result = await session.execute(
        sa.update(_conversations)
        .where(_conversations.c.id == conversation_id, _conversations.c.user_id == user_id)
        .values(updated_at=at)
        .returning(_conversations.c.id)
    )
    return result.first() is not None


async def recent_messages(
    session: AsyncSession, *, user_id: str, conversation_id: int, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` messages as plain rows, oldest first (index on conversation_id, id)."""
    m = _messages.c
    result = await session.execute(
        sa.select(m.id, m.role, m.content, m.tool_calls, m.created_at)
        .where(m.conversation_id == conversation_id, m.user_id == user_id)
        .order_by(m.id.desc())
        .limit(limit)
    )
    return [dict(row) for row in reversed(result.mappings().all())]


async def insert_message(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    role: str,
    content: str,
    at: datetime,
    tool_calls: list[dict[str, Any]] | None = None,
) -> int:
    """Store one message; returns its id."""
    values: dict[str, Any] = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "role": role,
        "content": content,
        "created_at": at,
    }
    if tool_calls is not None:
        # Left out when there are none: SQL NULL, not a JSON null.
        values["tool_calls"] = tool_calls
    result = await session.execute(sa.insert(_messages).values(values).returning(_messages.c.id))
    message_id: int = result.scalar_one()
    return message_id


async def touch(session: AsyncSession, *, user_id: str, conversation_id: int, at: datetime) -> None:
    await session.execute(
        sa.update(_conversations)
        .where(_conversations.c.id == conversation_id, _conversations.c.user_id == user_id)
        .values(updated_at=at)
    )


async def list_for_user(session: AsyncSession, *, user_id: str, limit: int) -> list[Conversation]:
    result = await session.execute(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .limit(limit)
    )
    return list(result.scalars().all())


async def messages_after(
    session: AsyncSession, *, user_id: str, conversation_id: int, after_id: int, limit: int
) -> list[Message]:
    result = await session.execute(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.user_id == user_id,
            col(Message.id) > after_id,
        )
        .order_by(col(Message.id))
        .limit(limit)
    )
    return list(result.scalars().all())
