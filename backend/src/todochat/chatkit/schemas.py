"""ChatKit's ids, the request context and the protocol's errors, in this service's terms.

A ChatKit thread is a conversation and its items are the conversation's messages; their ids
are the table ids with ChatKit's own prefixes (`thr_12`, `msg_345`), so a thread id names the
same conversation as `GET /api/{user_id}/conversations` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chatkit.store import NotFoundError
from chatkit.types import ThreadMetadata, UserMessageItem

from todochat.chat.service import StreamedTurn
from todochat.errors import AppError, NotFound, Unprocessable
from todochat.ratelimit import Budget

THREAD_PREFIX = "thr_"
ITEM_PREFIX = "msg_"
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class BegunTurn:
    """A ChatKit turn whose user message is stored: its thread, the user's item, and the chat
    turn's events to render."""

    thread: ThreadMetadata
    user_item: UserMessageItem
    streamed: StreamedTurn
    new_thread: bool
    retried: bool


@dataclass(frozen=True)
class RequestContext:
    """What ChatKit hands to the store and to `respond`: the authenticated user, never one the
    request names, the user's chat budget (spent when a turn begins), and the turn the request
    began, for `respond` to render."""

    user_id: str
    budget: Budget
    turn: BegunTurn | None = None

    def with_turn(self, turn: BegunTurn) -> RequestContext:
        return dataclasses.replace(self, turn=turn)


class ThreadNotFound(NotFound, NotFoundError):
    """Not there, not yours, or not an id of ours: one answer (404)."""

    detail = "Thread not found"

    def __init__(self) -> None:
        super().__init__()


class ItemNotFound(NotFound, NotFoundError):
    detail = "Thread item not found"

    def __init__(self) -> None:
        super().__init__()


class UnsupportedRequest(AppError):
    """A ChatKit request for something this backend does not offer."""

    def __init__(self, kind: str) -> None:
        # `kind` is one of the protocol's request types (a validated literal), safe to echo.
        super().__init__(f"{kind} is not supported by this server")


class InvalidChatKitRequest(Unprocessable):
    pass


def thread_id(conversation_id: int) -> str:
    return f"{THREAD_PREFIX}{conversation_id}"


def item_id(message_id: int) -> str:
    return f"{ITEM_PREFIX}{message_id}"


def _number(value: str, prefix: str) -> int | None:
    digits = value.removeprefix(prefix)
    if digits == value or not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        return None
    number = int(digits)
    return number if 0 < number <= MAX_ID else None


def conversation_id(thread: str) -> int:
    """The conversation a thread id names; `ThreadNotFound` for anything else."""
    number = _number(thread, THREAD_PREFIX)
    if number is None:
        raise ThreadNotFound()
    return number


def message_id(item: str) -> int:
    number = _number(item, ITEM_PREFIX)
    if number is None:
        raise ItemNotFound()
    return number
