"""The ChatKit server: ChatKit's requests answered by this backend's chat turn and store.

A ChatKit turn (threads.create, threads.add_user_message, threads.retry_after_item) is the
chat route's turn (chat/service.py `stream_turn`: the same ledger, agent runtime, rate limit and
persistence rules) rendered as ChatKit thread events. As on `POST /chat/stream`, the turn
begins before the stream does, so what refuses it (429, 404, 422) is an HTTP error with the
usual JSON body; a failure after that ends the stream with an `error` event carrying the chat
route's message. The turn runs to its end and is stored even if the client goes away, so the
stream says it cannot be cancelled.

ChatKit's default turn flow stores the user's message and the reply through the Store; here
the ledger stores them, which is why the three turn requests are handled in `handle`, and every
other request ChatKit offers that this backend has goes to `ChatKitServer.process` and the
Store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ChatKitReq,
    ErrorEvent,
    InferenceOptions,
    ItemsListReq,
    Page,
    ProgressUpdateEvent,
    StreamOptions,
    StreamOptionsEvent,
    Thread,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    UserMessageInput,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from pydantic import TypeAdapter, ValidationError

from todochat.agent.events import TextDelta, ToolStarted
from todochat.agent.runner import AgentRuntime
from todochat.chat import service as chat_service
from todochat.chat.schemas import ChatRequest
from todochat.chat.service import Completed, Failed, StreamedTurn
from todochat.chatkit import schemas
from todochat.chatkit.schemas import (
    BegunTurn,
    InvalidChatKitRequest,
    RequestContext,
    ThreadNotFound,
    UnsupportedRequest,
)
from todochat.chatkit.store import ConversationStore
from todochat.config import Settings
from todochat.conversations.service import (
    ConversationNotFound,
    MessageNotFound,
    title_for,
)
from todochat.db import Database
from todochat.schemas import describe, problems

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEP_ALIVE = b": keep-alive\n\n"
# A streamed reply's id until the turn ends: the stored message's id is known only once it is
# stored, after the text has streamed. Never of the `msg_<number>` form, so it never names a
# stored message.
PENDING_PREFIX = "msg_pending_"

_REQUEST = TypeAdapter[ChatKitReq](ChatKitReq)


def parse(body: bytes) -> ChatKitReq:
    """A ChatKit request, validated by the package's own types; 422 with the first problem."""
    try:
        return _REQUEST.validate_json(body)
    except ValidationError as exc:
        found = problems(list(exc.errors()))
        detail = describe(found[0]) if found else "Invalid ChatKit request"
        raise InvalidChatKitRequest(detail) from exc


class TodoChatKitServer(ChatKitServer[RequestContext]):
    def __init__(self, *, db: Database, runtime: AgentRuntime, settings: Settings) -> None:
        super().__init__(ConversationStore(db))
        self.db = db
        self.runtime = runtime
        self.settings = settings

    async def handle(
        self, body: bytes, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """Answer one ChatKit request: JSON, or a stream of thread events."""
        request = parse(body)
        match request:
            case ThreadsCreateReq():
                turn = await self._begin(context, request.params.input, thread_id=None)
            case ThreadsAddUserMessageReq(params=added):
                turn = await self._begin(context, added.input, thread_id=added.thread_id)
            case ThreadsRetryAfterItemReq(params=retried):
                turn = await self._retry(context, retried.thread_id, retried.item_id)
            case (
                ThreadsGetByIdReq()
                | ThreadsListReq()
                | ItemsListReq()
                | ThreadsUpdateReq()
                | ThreadsDeleteReq()
            ):
                return await self.process(body, context)
            case _:
                # Attachments, widget and client-tool actions, structured input, feedback and
                # dictation: nothing here could serve them, and a silent "{}" would claim it had.
                raise UnsupportedRequest(request.type)
        return StreamingResult(self._sse(self._events(turn, context)))

    # --- beginning a turn -----------------------------------------------------------------------
    async def _begin(
        self, context: RequestContext, given: UserMessageInput, *, thread_id: str | None
    ) -> BegunTurn:
        if given.attachments:
            raise UnsupportedRequest("attachments")
        conversation_id = None if thread_id is None else schemas.conversation_id(thread_id)
        request = _chat_request(_message_text(given), conversation_id)
        turn = await self._stream_turn(context, request, retry_of=None)
        now = datetime.now(UTC)
        thread = ThreadMetadata(
            id=schemas.thread_id(turn.conversation_id),
            title=title_for(request.message) if conversation_id is None else None,
            created_at=now,
        )
        assert turn.message_id is not None, "a turn without a key is never a replay"
        user_item = UserMessageItem(
            id=schemas.item_id(turn.message_id),
            thread_id=thread.id,
            created_at=now,
            content=[UserMessageTextContent(text=request.message)],
            inference_options=InferenceOptions(),
        )
        return BegunTurn(thread, user_item, turn, new_thread=conversation_id is None, retried=False)

    async def _retry(self, context: RequestContext, thread_id: str, item_id: str) -> BegunTurn:
        """Answer a stored user message again; what followed it is deleted as the turn begins."""
        item = await self.store.load_item(thread_id, item_id, context)
        if not isinstance(item, UserMessageItem):
            raise InvalidChatKitRequest("Only a user message can be answered again")
        text = "".join(part.text for part in item.content)
        request = _chat_request(text, schemas.conversation_id(thread_id))
        turn = await self._stream_turn(context, request, retry_of=schemas.message_id(item_id))
        thread = await self.store.load_thread(thread_id, context)
        return BegunTurn(thread, item, turn, new_thread=False, retried=True)

    async def _stream_turn(
        self, context: RequestContext, request: ChatRequest, *, retry_of: int | None
    ) -> StreamedTurn:
        try:
            return await chat_service.stream_turn(
                db=self.db,
                runtime=self.runtime,
                user_id=context.user_id,
                request=request,
                history_limit=self.settings.chat_history_limit,
                heartbeat_s=self.settings.chat_stream_heartbeat_s,
                admit=context.budget.spend,
                retry_of=retry_of,
            )
        except ConversationNotFound as exc:
            raise ThreadNotFound() from exc
        except MessageNotFound as exc:
            raise schemas.ItemNotFound() from exc

    # --- the stream -----------------------------------------------------------------------------
    async def _events(
        self, turn: BegunTurn, context: RequestContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        if turn.new_thread:
            yield ThreadCreatedEvent(thread=Thread(**turn.thread.model_dump(), items=Page()))
        if not turn.retried:
            yield ThreadItemDoneEvent(item=turn.user_item)
        # The turn goes on (and is stored) whatever the client does: no stop button.
        yield StreamOptionsEvent(stream_options=StreamOptions(allow_cancel=False))
        async for event in self.respond(turn.thread, turn.user_item, context.with_turn(turn)):
            yield event

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The begun turn's events as ChatKit's: the reply's text as it streams, a progress
        line per tool call, the stored reply at the end, or an error event."""
        if context.turn is None:
            raise RuntimeError("respond() renders a turn begun by handle()")
        reply_id = f"{PENDING_PREFIX}{uuid.uuid4().hex}"
        opened = False
        async for event in context.turn.streamed.events:
            if isinstance(event, TextDelta):
                if not opened:
                    opened = True
                    yield ThreadItemAddedEvent(item=_reply(reply_id, thread.id, ""))
                    yield ThreadItemUpdatedEvent(
                        item_id=reply_id,
                        update=AssistantMessageContentPartAdded(
                            content_index=0, content=AssistantMessageContent(text="")
                        ),
                    )
                yield ThreadItemUpdatedEvent(
                    item_id=reply_id,
                    update=AssistantMessageContentPartTextDelta(content_index=0, delta=event.delta),
                )
            elif isinstance(event, ToolStarted):
                yield ProgressUpdateEvent(text=_progress(event.name))
            elif isinstance(event, Completed):
                # The reply as stored (a multi-step turn streams more text than it keeps).
                yield ThreadItemDoneEvent(item=_reply(reply_id, thread.id, event.response.response))
            elif isinstance(event, Failed):
                if opened:
                    yield ThreadItemRemovedEvent(item_id=reply_id)
                yield ErrorEvent(code="custom", message=event.detail, allow_retry=event.retry)

    async def _sse(self, events: AsyncIterator[ThreadStreamEvent]) -> AsyncGenerator[bytes, None]:
        """Events as Server-Sent Events, with a comment line while the model thinks quietly."""
        heartbeat_s = self.settings.chat_stream_heartbeat_s
        iterator = aiter(events)
        step: asyncio.Future[ThreadStreamEvent] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(iterator))
                while not (await asyncio.wait({step}, timeout=heartbeat_s))[0]:
                    yield KEEP_ALIVE
                try:
                    event = step.result()
                except StopAsyncIteration:
                    return
                data = event.model_dump_json(by_alias=True, exclude_none=True)
                yield b"data: " + data.encode() + b"\n\n"
        finally:
            # A client that went away: stop reading (the turn itself runs on and is stored).
            if step is not None and not step.done():
                step.cancel()


def _reply(item_id: str, thread_id: str, text: str) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=datetime.now(UTC),
        content=[AssistantMessageContent(text=text)] if text else [],
    )


def _progress(tool: str) -> str:
    return {
        "add_task": "Adding a task…",
        "list_tasks": "Looking at your tasks…",
        "complete_task": "Updating a task…",
        "update_task": "Updating a task…",
        "delete_task": "Deleting a task…",
    }.get(tool, "Working on it…")


def _message_text(given: UserMessageInput) -> str:
    """What the user wrote: the composer's text with its tags' text in place, and the passage
    the user quoted (ChatKit shows it beside the message) in front, for the model to see."""
    text = "".join(
        part.text
        for part in given.content
        if isinstance(part, UserMessageTextContent | UserMessageTagContent)
    )
    if given.quoted_text and given.quoted_text.strip():
        return f"> {given.quoted_text.strip()}\n\n{text}"
    return text


def _chat_request(message: str, conversation_id: int | None) -> ChatRequest:
    try:
        return ChatRequest(message=message, conversation_id=conversation_id)
    except ValidationError as exc:
        found = problems(list(exc.errors()))
        raise InvalidChatKitRequest(describe(found[0]) if found else "Invalid message") from exc
