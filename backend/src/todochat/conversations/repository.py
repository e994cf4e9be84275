"""Conversation and message queries, every one filtered by the owner's user id."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select, update

from todochat.logs import timed
from todochat.models import Conversation, Message


@timed("repo.conversations.get", level=logging.DEBUG)
async def get(session: AsyncSession, *, user_id: str, conversation_id: int) -> Conversation | None:
    result = await session.execute(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    return result.scalar_one_or_none()


@timed("repo.conversations.add", level=logging.DEBUG)
async def add(session: AsyncSession, *, conversation: Conversation) -> Conversation:
    session.add(conversation)
    await session.flush()
    return conversation


@timed("repo.conversations.touch", level=logging.DEBUG)
async def touch(session: AsyncSession, *, user_id: str, conversation_id: int, at: datetime) -> None:
    await session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id)
        .values(updated_at=at)
    )


@timed("repo.conversations.list_for_user", level=logging.DEBUG)
async def list_for_user(session: AsyncSession, *, user_id: str, limit: int) -> list[Conversation]:
    result = await session.execute(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .limit(limit)
    )
    return list(result.scalars().all())


@timed("repo.conversations.last_messages", level=logging.DEBUG)
async def last_messages(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    limit: int,
    before_id: int | None = None,
) -> list[Message]:
    """The newest `limit` messages (older than `before_id` if given), returned oldest first
    (index on conversation_id, id)."""
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.user_id == user_id
    )
    if before_id is not None:
        query = query.where(col(Message.id) < before_id)
    result = await session.execute(query.order_by(col(Message.id).desc()).limit(limit))
    return list(reversed(result.scalars().all()))


@timed("repo.conversations.messages_after", level=logging.DEBUG)
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


@timed("repo.conversations.add_message", level=logging.DEBUG)
async def add_message(session: AsyncSession, *, message: Message) -> Message:
    session.add(message)
    await session.flush()
    return message
