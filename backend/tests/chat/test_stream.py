"""The streamed chat turn (`POST /api/{user_id}/chat/stream`) over real HTTP, read by the AI SDK's
own client code, with the offline model and with the OpenAI path against a streaming fake."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fakes.openai_upstream import FakeUpstream, fail, text, tool_call

from tests.chat.conftest import Reader
from tests.conftest import User, make_settings, served
from todochat.errors import ModelUnavailable


@pytest.fixture(scope="module")
async def offline_url(database_url: str) -> AsyncIterator[str]:
    async with served(make_settings(database_url)) as url:
        yield url


def _token(user: User) -> str:
    return user.headers["Authorization"].removeprefix("Bearer ")


def _as_json_turn(message: dict[str, Any]) -> dict[str, Any]:
    """The assembled UIMessage in the JSON turn's terms: its text and its tool calls."""
    tools = [p for p in message["parts"] if p["type"].startswith("tool-")]
    return {
        "conversation_id": message["metadata"]["conversationId"],
        "response": "".join(p["text"] for p in message["parts"] if p["type"] == "text"),
        "tool_calls": [
            {
                "id": p["toolCallId"],
                "name": p["type"].removeprefix("tool-"),
                "arguments": p["input"],
                "result": p["output"],
            }
            for p in tools
            if p["state"] == "output-available"
        ],
    }


async def _streamed_then_replayed_as_json(
    reader: Reader, base: str, user: User, message: str, **extra: Any
) -> tuple[dict[str, Any], httpx.Response]:
    key = uuid.uuid4().hex
    streamed = await reader(
        api=f"{base}/api/{user.id}/chat/stream",
        token=_token(user),
        message=message,
        idempotency_key=key,
        **extra,
    )
    assert streamed["error"] is None, streamed
    body = {"message": message, **({"conversation_id": extra["conversation_id"]} if extra else {})}
    async with httpx.AsyncClient(base_url=base) as c:
        replay = await c.post(
            f"/api/{user.id}/chat", json=body, headers={**user.headers, "Idempotency-Key": key}
        )
    return streamed, replay


async def test_the_ai_sdk_assembles_what_the_json_turn_answers_offline(
    offline_url: str, ai_sdk_reader: Reader
) -> None:
    user = User()
    streamed, replay = await _streamed_then_replayed_as_json(
        ai_sdk_reader, offline_url, user, "add a task to buy milk"
    )
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assembled = _as_json_turn(streamed["message"])
    assert assembled == replay.json()
    assert [c["name"] for c in assembled["tool_calls"]] == ["add_task"]
    assert "Buy milk" in assembled["response"]
    # Streamed in pieces, not in one piece at the end.
    assert streamed["snapshots"] > 5

    # A second turn in the same conversation, listing what the first added.
    cid = assembled["conversation_id"]
    streamed, replay = await _streamed_then_replayed_as_json(
        ai_sdk_reader, offline_url, user, "what's pending?", conversation_id=cid
    )
    assembled = _as_json_turn(streamed["message"])
    assert assembled == replay.json() and assembled["conversation_id"] == cid
    assert [c["name"] for c in assembled["tool_calls"]] == ["list_tasks"]
    assert assembled["tool_calls"][0]["result"][0]["title"] == "Buy milk"


async def test_the_ai_sdk_assembles_what_the_json_turn_answers_over_openai(
    openai_url: str, ai_sdk_reader: Reader, upstream: FakeUpstream
) -> None:
    upstream.behaviour.script.extend(
        [
            tool_call("add_task", {"title": "Call the bank"}),
            text("Added 'Call the bank' to your list."),
        ]
    )
    user = User()
    streamed, replay = await _streamed_then_replayed_as_json(
        ai_sdk_reader, openai_url, user, "remind me to call the bank"
    )
    assembled = _as_json_turn(streamed["message"])
    assert assembled == replay.json()
    assert assembled["response"] == "Added 'Call the bank' to your list."
    assert assembled["tool_calls"][0]["arguments"] == {"title": "Call the bank"}
    assert assembled["tool_calls"][0]["result"]["status"] == "created"
    # The upstream was asked to stream, with the body the OpenAI client's own request transform
    # would have sent (the agent's client skips it: agent/openai_client.py, decision P4).
    from openai._utils import async_maybe_transform
    from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming

    assert len(upstream.behaviour.requests) == 2
    for sent in upstream.behaviour.requests:
        assert sent.get("stream") is True and sent["messages"] and sent["tools"]
        assert await async_maybe_transform(sent, CompletionCreateParamsStreaming) == sent


async def test_a_repeat_replays_the_stream_without_acting_again(
    offline_url: str, ai_sdk_reader: Reader
) -> None:
    user, key = User(), uuid.uuid4().hex
    api = f"{offline_url}/api/{user.id}/chat/stream"
    first = await ai_sdk_reader(
        api=api, token=_token(user), message="add a task to water the plants", idempotency_key=key
    )
    again = await ai_sdk_reader(
        api=api, token=_token(user), message="add a task to water the plants", idempotency_key=key
    )
    assert _as_json_turn(again["message"]) == _as_json_turn(first["message"])
    async with httpx.AsyncClient(base_url=offline_url) as c:
        tasks = (await c.get(f"/api/{user.id}/tasks", headers=user.headers)).json()
    assert [t["title"] for t in tasks] == ["Water the plants"]


async def test_a_failure_after_the_first_byte_ends_the_stream_with_an_error_chunk(
    openai_url: str, ai_sdk_reader: Reader, upstream: FakeUpstream
) -> None:
    upstream.behaviour.script.extend([tool_call("add_task", {"title": "Renew passport"}), fail()])
    user = User()
    result = await ai_sdk_reader(
        api=f"{openai_url}/api/{user.id}/chat/stream", token=_token(user), message="passport"
    )
    # What the tool did was shown as it happened, is told, and is kept with the failure.
    [call] = _as_json_turn(result["message"])["tool_calls"]
    assert call["name"] == "add_task"
    told = f"Here is what I did: added 'Renew passport' (task #{call['result']['task_id']})."
    assert result["error"] == f"{ModelUnavailable.detail} {told}"
    cid = result["message"]["metadata"]["conversationId"]
    async with httpx.AsyncClient(base_url=openai_url) as c:
        messages = (
            await c.get(f"/api/{user.id}/conversations/{cid}/messages", headers=user.headers)
        ).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "passport"),
        ("assistant", result["error"]),
    ]
    assert messages[1]["tool_calls"][0]["id"] == call["id"]


@pytest.mark.parametrize(
    ("path", "body", "token", "status"),
    [
        ("/chat/stream", {"message": "hi"}, "bad-token", 401),
        ("/chat/stream", {"message": ""}, None, 422),
        ("/chat/stream", {"message": "hi", "conversation_id": 999_999}, None, 404),
    ],
)
async def test_failures_before_the_first_byte_are_json_errors(
    offline_url: str, path: str, body: dict[str, Any], token: str | None, status: int
) -> None:
    user = User()
    headers = user.headers if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=offline_url) as c:
        r = await c.post(f"/api/{user.id}{path}", json=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json" and "detail" in r.json()


async def test_the_stream_says_it_is_alive_and_is_not_buffered(
    openai_url: str, upstream: FakeUpstream
) -> None:
    """A model that thinks for longer than the heartbeat (0.2 s here) gets comment lines in
    between; the headers keep proxies from buffering or caching the stream."""
    upstream.behaviour.first_token_s = 0.7
    upstream.behaviour.script.append(text("Here you go."))
    user = User()
    async with (
        httpx.AsyncClient(base_url=openai_url) as c,
        c.stream(
            "POST", f"/api/{user.id}/chat/stream", json={"message": "hi"}, headers=user.headers
        ) as r,
    ):
        body = (await r.aread()).decode()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    assert ": keep-alive\n\n" in body
    assert body.index(": keep-alive") < body.index('"text-delta"')
    assert body.endswith("data: [DONE]\n\n")


async def test_a_client_that_leaves_mid_stream_loses_nothing(
    openai_url: str, upstream: FakeUpstream
) -> None:
    """The turn runs to its end and is stored once, although nobody reads it any more."""
    upstream.behaviour.token_gap_s = 0.1
    reply = "Added 'Book the dentist' to your list, and that is all for now."
    upstream.behaviour.script.extend(
        [tool_call("add_task", {"title": "Book the dentist"}), text(reply)]
    )
    user = User()
    async with httpx.AsyncClient(base_url=openai_url) as c:
        async with c.stream(
            "POST", f"/api/{user.id}/chat/stream", json={"message": "dentist"}, headers=user.headers
        ) as r:
            seen = []
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    seen.append(json.loads(line.removeprefix("data: ")))
                if seen and seen[-1]["type"] == "text-delta":
                    break  # leave mid-sentence
        cid = seen[0]["messageMetadata"]["conversationId"]
        for _ in range(100):
            messages = (
                await c.get(f"/api/{user.id}/conversations/{cid}/messages", headers=user.headers)
            ).json()
            if len(messages) == 2:
                break
            await asyncio.sleep(0.1)
        tasks = (await c.get(f"/api/{user.id}/tasks", headers=user.headers)).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "dentist"),
        ("assistant", reply),
    ]
    assert [t["title"] for t in tasks] == ["Book the dentist"]
