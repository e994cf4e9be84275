"""Conversation and message queries, every one filtered by the owner's user id.

The statements of a chat turn (`create`, `touch_owned`, `recent_messages`, `insert_message`,
`touch`) are Core statements on the tables: a turn runs them on every request, and the ORM's
unit of work (identity map, instance state, flush ordering) costs more than the query itself.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from todochat.logs import timed
from todochat.models import Conversation, Message

_conversations: sa.Table = Conversation.__table__  # type: ignore[attr-defined]
_messages: sa.Table = Message.__table__  # type: ignore[attr-defined]
_c = _conversations.c
_m = _messages.c


def _param(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    # Typed as the column, so that UTCDateTime and JSON process the value as usual.
    return sa.bindparam(name, type_=column.type)


# Built once with bound parameters (named unlike the columns, which SQLAlchemy reserves in
# INSERT and UPDATE): constructing a statement and its cache key on every call
# cost more CPU than executing it (measured: a 3-statement unit of work 1.6-2.1 ms -> 1.2 ms).
_CREATE = (
    sa.insert(_conversations)
    .values(
        user_id=sa.bindparam("owner"),
        title=sa.bindparam("p_title"),
        created_at=_param("at", _c.created_at),
        updated_at=_param("at", _c.updated_at),
    )
    .returning(_c.id)
)
_OWNED = sa.and_(_c.id == sa.bindparam("cid"), _c.user_id == sa.bindparam("owner"))
_TOUCH = sa.update(_conversations).where(_OWNED).values(updated_at=_param("at", _c.updated_at))
_TOUCH_OWNED = _TOUCH.returning(_c.id)
_RECENT = (
    sa.select(_m.id, _m.role, _m.content, _m.tool_calls, _m.created_at)
    .where(_m.conversation_id == sa.bindparam("cid"))
    .where(_m.user_id == sa.bindparam("owner"))
    .order_by(_m.id.desc())
    .limit(sa.bindparam("limit"))
)
# A resumed turn reads the history that preceded its stored user message.
_RECENT_BEFORE = _RECENT.where(_m.id < sa.bindparam("before"))
_MESSAGE_VALUES = {
    "conversation_id": sa.bindparam("cid"),
    "user_id": sa.bindparam("owner"),
    "role": sa.bindparam("p_role"),
    "content": sa.bindparam("p_content"),
    "created_at": _param("at", _m.created_at),
}
# Without tool calls the column is left out: SQL NULL, not a JSON null.
_INSERT_MESSAGE = sa.insert(_messages).values(_MESSAGE_VALUES).returning(_m.id)
_INSERT_MESSAGE_WITH_CALLS = (
    sa.insert(_messages)
    .values({**_MESSAGE_VALUES, "tool_calls": _param("p_tool_calls", _m.tool_calls)})
    .returning(_m.id)
)


@timed("repo.conversations.get", level=logging.DEBUG)
async def get(session: AsyncSession, *, user_id: str, conversation_id: int) -> Conversation | None:
    result = await session.execute(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    return result.scalar_one_or_none()


@timed("repo.conversations.create", level=logging.DEBUG)
async def create(
    session: AsyncSession, *, user_id: str, at: datetime, title: str | None = None
) -> int:
    """A new conversation of this user; returns its id."""
    result = await session.execute(_CREATE, {"owner": user_id, "at": at, "p_title": title})
    conversation_id: int = result.scalar_one()
    return conversation_id


@timed("repo.conversations.touch_owned", level=logging.DEBUG)
async def touch_owned(
    session: AsyncSession, *, user_id: str, conversation_id: int, at: datetime
) -> bool:
    """Mark the conversation active if this user owns it: the ownership check and the touch in
    one statement. False when there is no such conversation of this user."""
    result = await session.execute(
        _TOUCH_OWNED, {"owner": user_id, "cid": conversation_id, "at": at}
    )
    return result.first() is not None


@timed("repo.conversations.recent_messages", level=logging.DEBUG)
async def recent_messages(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    limit: int,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """The newest `limit` messages (older than `before_id` if given) as plain rows, oldest
    first (index on conversation_id, id)."""
    params: dict[str, Any] = {"owner": user_id, "cid": conversation_id, "limit": limit}
    if before_id is None:
        result = await session.execute(_RECENT, params)
    else:
        result = await session.execute(_RECENT_BEFORE, {**params, "before": before_id})
    return [dict(row) for row in reversed(result.mappings().all())]


@timed("repo.conversations.insert_message", level=logging.DEBUG)
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
    params: dict[str, Any] = {
        "cid": conversation_id,
        "owner": user_id,
        "p_role": role,
        "p_content": content,
        "at": at,
    }
    statement = _INSERT_MESSAGE
    if tool_calls is not None:
        statement = _INSERT_MESSAGE_WITH_CALLS
        params["p_tool_calls"] = tool_calls
    result = await session.execute(statement, params)
    message_id: int = result.scalar_one()
    return message_id


@timed("repo.conversations.touch", level=logging.DEBUG)
async def touch(session: AsyncSession, *, user_id: str, conversation_id: int, at: datetime) -> None:
    await session.execute(_TOUCH, {"owner": user_id, "cid": conversation_id, "at": at})


@timed("repo.conversations.list_for_user", level=logging.DEBUG)
async def list_for_user(session: AsyncSession, *, user_id: str, limit: int) -> list[Conversation]:
    result = await session.execute(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .limit(limit)
    )
    return list(result.scalars().all())


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


# --- Paging and editing, for ChatKit's threads and items (chatkit/store.py) -----------------
# Keyset pages on the id: ids grow with creation (never reused), so "after this one" is stable
# while rows are added or deleted, unlike an offset.


@timed("repo.conversations.page", level=logging.DEBUG)
async def page(
    session: AsyncSession, *, user_id: str, after_id: int | None, limit: int, newest_first: bool
) -> list[Conversation]:
    """Up to `limit` conversations of this user by id, after `after_id` in that order."""
    statement = select(Conversation).where(Conversation.user_id == user_id)
    if after_id is not None:
        statement = statement.where(
            col(Conversation.id) < after_id if newest_first else col(Conversation.id) > after_id
        )
    order = col(Conversation.id).desc() if newest_first else col(Conversation.id)
    result = await session.execute(statement.order_by(order).limit(limit))
    return list(result.scalars().all())


@timed("repo.conversations.set_title", level=logging.DEBUG)
async def set_title(
    session: AsyncSession, *, user_id: str, conversation_id: int, title: str | None
) -> bool:
    """False when there is no such conversation of this user."""
    result = await session.execute(
        sa.update(_conversations)
        .where(_c.id == conversation_id, _c.user_id == user_id)
        .values(title=title)
        .returning(_c.id)
    )
    return result.first() is not None


@timed("repo.conversations.delete", level=logging.DEBUG)
async def delete(session: AsyncSession, *, user_id: str, conversation_id: int) -> bool:
    """Delete the conversation and its messages; False when there is no such conversation of
    this user. Messages are deleted by statement, not left to the foreign key's cascade, so
    that the owner filter applies to them too."""
    await session.execute(
        sa.delete(_messages).where(_m.conversation_id == conversation_id, _m.user_id == user_id)
    )
    result = await session.execute(
        sa.delete(_conversations)
        .where(_c.id == conversation_id, _c.user_id == user_id)
        .returning(_c.id)
    )
    return result.first() is not None


@timed("repo.conversations.page_messages", level=logging.DEBUG)
async def page_messages(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool,
) -> list[Message]:
    statement = select(Message).where(
        Message.conversation_id == conversation_id, Message.user_id == user_id
    )
    if after_id is not None:
        statement = statement.where(
            col(Message.id) < after_id if newest_first else col(Message.id) > after_id
        )
    order = col(Message.id).desc() if newest_first else col(Message.id)
    result = await session.execute(statement.order_by(order).limit(limit))
    return list(result.scalars().all())


@timed("repo.conversations.get_message", level=logging.DEBUG)
async def get_message(
    session: AsyncSession, *, user_id: str, conversation_id: int, message_id: int
) -> Message | None:
    result = await session.execute(
        select(Message).where(
            Message.id == message_id,
            Message.conversation_id == conversation_id,
            Message.user_id == user_id,
        )
    )
    return result.scalar_one_or_none()


@timed("repo.conversations.delete_messages", level=logging.DEBUG)
async def delete_messages(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    message_id: int,
    and_later: bool = False,
) -> int:
    """Delete one message (or every message after it, with `and_later`); how many went."""
    where = [_m.conversation_id == conversation_id, _m.user_id == user_id]
    where.append(_m.id > message_id if and_later else _m.id == message_id)
    result = await session.execute(sa.delete(_messages).where(*where).returning(_m.id))
    return len(result.all())
