"""Conversations and their messages: the chat's persistence. Each function runs inside the
caller's unit of work (`Database.run`), which commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.conversations import repository
from todochat.conversations.schemas import ConversationRead, MessageRead, ToolCall, TurnStart
from todochat.errors import AppError, Conflict, NotFound
from todochat.logs import timed
from todochat.models import Conversation, utcnow


class ConversationNotFound(NotFound):
    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"Conversation {conversation_id} not found")


class ConversationBusy(Conflict):
    detail = "This conversation is still answering another message. Retry in a few seconds."
    headers = {"Retry-After": "2"}


class ConversationMovedOn(Conflict):
    # A turn whose instance died, retried after a later message was answered: answering it
    # now would put its reply after another question.
    detail = (
        "This message was not answered, and a later message in the conversation has been "
        "answered since. Send it again as a new message."
    )


@dataclass(frozen=True)
class TurnLease:
    """Who holds a conversation's turn, and for how long each claim or renewal lasts."""

    owner: str
    lease_s: float


class MessageNotFound(NotFound):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"Message {message_id} not found")


class NotAUserMessage(AppError):
    detail = "Only a message the user wrote can be answered again"


TITLE_CHARS = 60


def title_for(message: str) -> str:
    """A conversation's title: the start of its first message's first line."""
    line = message.strip().splitlines()[0].strip() if message.strip() else ""
    if len(line) <= TITLE_CHARS:
        return line
    return line[: TITLE_CHARS - 1].rstrip() + "\u2026"


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
    lease: TurnLease,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> TurnStart:
    """Find or create the conversation and hold its turn, read its recent history, store the
    user's message. Another turn holding the conversation is ConversationBusy (409): turns of
    one conversation run one at a time, so each reply follows its own question and the model
    always sees the turn before. `admit` runs once the turn is known to be valid, before
    anything is stored; what it raises rolls the unit back."""
    now = utcnow()
    until = now + timedelta(seconds=lease.lease_s)
    if conversation_id is None:
        if admit is not None:
            await admit()
        cid = await repository.create(
            session,
            user_id=user_id,
            at=now,
            title=title_for(message),
            turn_owner=lease.owner,
            turn_until=until,
        )
        history: list[MessageRead] = []
    else:
        cid = conversation_id
        await _claim(session, user_id=user_id, conversation_id=cid, lease=lease, now=now)
        if admit is not None:
            await admit()
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
    lease: TurnLease,
) -> TurnStart:
    """A turn whose user message is stored already, with the history that preceded it; its
    conversation's turn is held again (ConversationBusy while another turn holds it)."""
    await _claim(
        session, user_id=user_id, conversation_id=conversation_id, lease=lease, now=utcnow()
    )
    if (
        await repository.last_question_id(session, user_id=user_id, conversation_id=conversation_id)
        != message_id
    ):
        raise ConversationMovedOn()
    return await _turn_before(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        history_limit=history_limit,
    )


@timed("conversations.retry_turn")
async def retry_turn(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    message_id: int,
    history_limit: int,
    lease: TurnLease,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> TurnStart:
    """Answer a stored user message again: what followed it is deleted, and the turn gets the
    history that preceded it; the conversation's turn is held as in `start_turn`. `admit`
    runs as in `start_turn`, before anything changes."""
    await _claim(
        session, user_id=user_id, conversation_id=conversation_id, lease=lease, now=utcnow()
    )
    message = await repository.get_message(
        session, user_id=user_id, conversation_id=conversation_id, message_id=message_id
    )
    if message is None:
        raise MessageNotFound(message_id)
    if message.role != "user":
        raise NotAUserMessage()
    if admit is not None:
        await admit()
    await repository.delete_messages(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        and_later=True,
    )
    return await _turn_before(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        history_limit=history_limit,
    )


@timed("conversations.finish_turn")
async def finish_turn(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    reply: str,
    tool_calls: list[ToolCall],
    owner: str,
) -> MessageRead:
    """Store the assistant's reply with the tool calls it made; the turn is over."""
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
    await repository.touch_and_release(
        session, user_id=user_id, conversation_id=conversation_id, turn_owner=owner, at=now
    )
    return MessageRead(
        id=message_id,
        role="assistant",
        content=reply,
        tool_calls=tool_calls or None,
        created_at=now,
    )


async def _claim(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    lease: TurnLease,
    now: datetime,
) -> None:
    # Ownership check, touch and claim in one statement, before anything is read.
    if await repository.claim_turn(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        turn_owner=lease.owner,
        at=now,
        turn_until=now + timedelta(seconds=lease.lease_s),
    ):
        return
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    raise ConversationBusy()


async def _turn_before(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    message_id: int,
    history_limit: int,
) -> TurnStart:
    """The turn that answers a stored user message, with the history that preceded it."""
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


async def renew_turn(
    session: AsyncSession, *, user_id: str, conversation_id: int, lease: TurnLease
) -> bool:
    """The holder's heartbeat: its turn runs `lease_s` from now; False if it was lost."""
    return await repository.renew_turn(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        turn_owner=lease.owner,
        turn_until=utcnow() + timedelta(seconds=lease.lease_s),
    )


async def release_turn(
    session: AsyncSession, *, user_id: str, conversation_id: int, owner: str
) -> None:
    """Give the conversation's turn back early (the turn ended without a reply)."""
    await repository.release_turn(
        session, user_id=user_id, conversation_id=conversation_id, turn_owner=owner
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


# --- Paging and editing (ChatKit's threads and items, chatkit/store.py) ----------------------


async def get_conversation(
    session: AsyncSession, *, user_id: str, conversation_id: int
) -> ConversationRead:
    conversation = await _owned(session, user_id=user_id, conversation_id=conversation_id)
    return ConversationRead.model_validate(conversation)


async def page_conversations(
    session: AsyncSession, *, user_id: str, after_id: int | None, limit: int, newest_first: bool
) -> list[ConversationRead]:
    rows = await repository.page(
        session, user_id=user_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    return [ConversationRead.model_validate(c) for c in rows]


async def rename(
    session: AsyncSession, *, user_id: str, conversation_id: int, title: str | None
) -> None:
    if not await repository.set_title(
        session, user_id=user_id, conversation_id=conversation_id, title=title
    ):
        raise ConversationNotFound(conversation_id)


async def delete_conversation(session: AsyncSession, *, user_id: str, conversation_id: int) -> None:
    """The conversation and its messages go; nothing else (the user's tasks stay)."""
    if not await repository.delete(session, user_id=user_id, conversation_id=conversation_id):
        raise ConversationNotFound(conversation_id)


async def page_messages(
    session: AsyncSession,
    *,
    user_id: str,
    conversation_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool,
) -> list[MessageRead]:
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    rows = await repository.page_messages(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        after_id=after_id,
        limit=limit,
        newest_first=newest_first,
    )
    return [MessageRead.model_validate(m) for m in rows]


async def get_message(
    session: AsyncSession, *, user_id: str, conversation_id: int, message_id: int
) -> MessageRead:
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    message = await repository.get_message(
        session, user_id=user_id, conversation_id=conversation_id, message_id=message_id
    )
    if message is None:
        raise MessageNotFound(message_id)
    return MessageRead.model_validate(message)


async def delete_message(
    session: AsyncSession, *, user_id: str, conversation_id: int, message_id: int
) -> None:
    await _owned(session, user_id=user_id, conversation_id=conversation_id)
    deleted = await repository.delete_messages(
        session, user_id=user_id, conversation_id=conversation_id, message_id=message_id
    )
    if not deleted:
        raise MessageNotFound(message_id)
