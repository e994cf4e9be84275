"""ChatKit's `Store` over this backend's own tables: a thread is a conversation, its items are
the conversation's messages. Every read and write is the authenticated user's (the request
context's), through the conversations service, whose queries filter by owner.

Items are written by the chat turn only (the ledger stores the user's message before the model
starts and the reply at the end, chat/ledger/); ChatKit's own item writes, which its default
turn flow makes, are refused here, so a message can never be stored twice. Attachments are not
offered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from chatkit.store import Store
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    Attachment,
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.chatkit import schemas
from todochat.chatkit.schemas import RequestContext, UnsupportedRequest
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import ConversationRead, MessageRead
from todochat.conversations.service import ConversationNotFound, MessageNotFound
from todochat.db import Database
from todochat.errors import Unprocessable
from todochat.schemas import has_bad_characters

# ChatKit's page size when a request names none; a larger `limit` is cut to MAX_PAGE, and the
# page's `has_more` tells the client to ask again.
MAX_PAGE = 100
MAX_TITLE_CHARS = 200
P = ParamSpec("P")
T = TypeVar("T")


def thread_metadata(conversation: ConversationRead) -> ThreadMetadata:
    return ThreadMetadata(
        id=schemas.thread_id(conversation.id),
        title=conversation.title,
        created_at=conversation.created_at,
    )


def thread_item(message: MessageRead, conversation_id: int) -> ThreadItem:
    """A stored message as ChatKit shows it. Tool calls stay inside the assistant message, as
    in the REST history; ChatKit has no item for a server-side tool call."""
    common: dict[str, Any] = {
        "id": schemas.item_id(message.id),
        "thread_id": schemas.thread_id(conversation_id),
        "created_at": message.created_at,
    }
    if message.role == "user":
        return UserMessageItem(
            **common,
            content=[UserMessageTextContent(text=message.content)],
            inference_options=InferenceOptions(),
        )
    return AssistantMessageItem(**common, content=[AssistantMessageContent(text=message.content)])


def _page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


class ConversationStore(Store[RequestContext]):
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- threads -------------------------------------------------------------------------------
    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        conversation = await self._run(
            conversation_service.get_conversation,
            user_id=context.user_id,
            conversation_id=schemas.conversation_id(thread_id),
        )
        return thread_metadata(conversation)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        """Only the title of a thread can change (threads.update); threads are created by the
        turn that stores their first message."""
        title = (thread.title or "").strip()
        if not title or len(title) > MAX_TITLE_CHARS or has_bad_characters(title):
            raise Unprocessable(
                f"A thread title is 1-{MAX_TITLE_CHARS} characters, without control characters"
            )
        # ChatKit answers threads.update with this object: it shows the title as stored.
        thread.title = title
        await self._run(
            conversation_service.rename,
            user_id=context.user_id,
            conversation_id=schemas.conversation_id(thread.id),
            title=title,
        )

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        size = _page_size(limit)
        rows = await self._run(
            conversation_service.page_conversations,
            user_id=context.user_id,
            after_id=None if after is None else schemas.conversation_id(after),
            limit=size + 1,
            newest_first=order != "asc",
        )
        data = [thread_metadata(row) for row in rows[:size]]
        return Page(
            data=data,
            has_more=len(rows) > size,
            after=data[-1].id if data else None,
        )

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        await self._run(
            conversation_service.delete_conversation,
            user_id=context.user_id,
            conversation_id=schemas.conversation_id(thread_id),
        )

    # --- items ---------------------------------------------------------------------------------
    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        conversation_id = schemas.conversation_id(thread_id)
        size = _page_size(limit)
        rows = await self._run(
            conversation_service.page_messages,
            user_id=context.user_id,
            conversation_id=conversation_id,
            after_id=None if after is None else schemas.message_id(after),
            limit=size + 1,
            newest_first=order == "desc",
        )
        data = [thread_item(row, conversation_id) for row in rows[:size]]
        return Page(data=data, has_more=len(rows) > size, after=data[-1].id if data else None)

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        conversation_id = schemas.conversation_id(thread_id)
        message = await self._run(
            conversation_service.get_message,
            user_id=context.user_id,
            conversation_id=conversation_id,
            message_id=schemas.message_id(item_id),
        )
        return thread_item(message, conversation_id)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        await self._run(
            conversation_service.delete_message,
            user_id=context.user_id,
            conversation_id=schemas.conversation_id(thread_id),
            message_id=schemas.message_id(item_id),
        )

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        raise UnsupportedRequest("Adding thread items outside a chat turn")

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        raise UnsupportedRequest("Changing thread items")

    # --- attachments (not offered) -------------------------------------------------------------
    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        raise UnsupportedRequest("attachments")

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        raise UnsupportedRequest("attachments")

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        raise UnsupportedRequest("attachments")

    async def _run(
        self,
        work: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A unit of work; the conversations domain's "not found" is ChatKit's (404 either way)."""
        try:
            return await self.db.run(work, *args, **kwargs)
        except ConversationNotFound as exc:
            raise schemas.ThreadNotFound() from exc
        except MessageNotFound as exc:
            raise schemas.ItemNotFound() from exc
