"""A ChatKit client made of the `openai-chatkit` package's own request and event types: every
request is built from them, every streamed event is parsed by them (a line they cannot parse
fails the test), over real HTTP to the app behind uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import pytest
from chatkit.types import (
    InferenceOptions,
    Page,
    Thread,
    ThreadCreateParams,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadsCreateReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
)
from pydantic import BaseModel, TypeAdapter

from tests.conftest import User, make_settings, served

EVENT = TypeAdapter[ThreadStreamEvent](ThreadStreamEvent)
ITEMS = TypeAdapter(Page[ThreadItem])
THREADS = TypeAdapter(Page[Thread])
M = TypeVar("M", bound=BaseModel)


@pytest.fixture(scope="module")
async def offline_url(database_url: str) -> AsyncIterator[str]:
    async with served(make_settings(database_url, chat_stream_heartbeat_s=0.2)) as url:
        yield url


def said(text: str) -> UserMessageInput:
    return UserMessageInput(
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options=InferenceOptions(),
    )


class ChatKit:
    """One user's ChatKit client: `api.url` is `/chatkit`, `fetch` adds the bearer token."""

    def __init__(self, base: str, user: User | None) -> None:
        self.base = base
        self.user = user
        self.headers = dict(user.headers) if user is not None else {}

    def _body(self, request: BaseModel | dict[str, Any] | bytes) -> bytes:
        if isinstance(request, bytes):
            return request
        if isinstance(request, dict):
            return httpx.Request("POST", "/", json=request).content
        return request.model_dump_json(by_alias=True, exclude_none=True).encode()

    async def post(self, request: BaseModel | dict[str, Any] | bytes) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as c:
            return await c.post(
                "/chatkit",
                content=self._body(request),
                headers={**self.headers, "Content-Type": "application/json"},
            )

    async def json(self, request: BaseModel, adapter: TypeAdapter[Any]) -> Any:
        r = await self.post(request)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        return adapter.validate_json(r.content)

    async def stream(self, request: BaseModel) -> list[ThreadStreamEvent]:
        """Every event of a streamed answer, parsed by ChatKit's types, to its end."""
        events: list[ThreadStreamEvent] = []
        async with (
            httpx.AsyncClient(base_url=self.base, timeout=30) as c,
            c.stream(
                "POST",
                "/chatkit",
                content=self._body(request),
                headers={**self.headers, "Content-Type": "application/json"},
            ) as r,
        ):
            assert r.status_code == 200, (await r.aread()).decode()
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if not line or line.startswith(":"):
                    continue  # event separators and keep-alive comments
                assert line.startswith("data: "), line
                events.append(EVENT.validate_json(line.removeprefix("data: ")))
        return events

    async def create(self, text: str) -> tuple[Thread, list[ThreadStreamEvent]]:
        events = await self.stream(ThreadsCreateReq(params=ThreadCreateParams(input=said(text))))
        created = events[0]
        assert created.type == "thread.created", events
        return created.thread, events

    async def tasks(self) -> list[dict[str, Any]]:
        assert self.user is not None
        async with httpx.AsyncClient(base_url=self.base) as c:
            r = await c.get(f"/api/{self.user.id}/tasks", headers=self.headers)
        assert r.status_code == 200
        tasks: list[dict[str, Any]] = r.json()
        return tasks

    async def rest(self, path: str) -> httpx.Response:
        assert self.user is not None
        async with httpx.AsyncClient(base_url=self.base) as c:
            return await c.get(f"/api/{self.user.id}{path}", headers=self.headers)


def done_items(events: list[ThreadStreamEvent]) -> list[ThreadItem]:
    return [e.item for e in events if isinstance(e, ThreadItemDoneEvent)]


def reply_text(events: list[ThreadStreamEvent]) -> str:
    """The assistant's message as ChatKit ends up showing it."""
    [reply] = [i for i in done_items(events) if i.type == "assistant_message"]
    return "".join(part.text for part in reply.content)


def user_items(events: list[ThreadStreamEvent]) -> list[UserMessageItem]:
    return [i for i in done_items(events) if isinstance(i, UserMessageItem)]
