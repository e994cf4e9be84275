"""ChatKit turns on the OpenAI path (a streaming fake upstream): the text streams as it comes,
an upstream failure is the chat route's friendly error as a ChatKit `error` event, the stream
keeps itself alive, a client that leaves loses nothing, and the chat route's rate limit holds."""

from __future__ import annotations

import asyncio

import httpx
from chatkit.types import (
    ErrorEvent,
    ItemsListParams,
    ItemsListReq,
    ThreadCreateParams,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadListParams,
    ThreadsCreateReq,
    ThreadsListReq,
)
from fakes.openai_upstream import FakeUpstream, fail, text, tool_call

from tests.chatkit.conftest import EVENT, ITEMS, THREADS, ChatKit, reply_text, said
from tests.conftest import User, make_settings, openai_settings, served
from todochat.errors import ModelMisconfigured, ModelUnavailable


async def test_the_openai_path_streams_its_text_into_the_reply(
    openai_url: str, upstream: FakeUpstream
) -> None:
    upstream.behaviour.script.extend(
        [tool_call("add_task", {"title": "Call the bank"}), text("Added 'Call the bank'.")]
    )
    ck = ChatKit(openai_url, User())
    thread, events = await ck.create("remind me to call the bank")
    deltas = [e for e in events if isinstance(e, ThreadItemUpdatedEvent)]
    assert "".join(getattr(d.update, "delta", "") for d in deltas) == "Added 'Call the bank'."
    assert reply_text(events) == "Added 'Call the bank'."
    assert all(r.get("stream") is True for r in upstream.behaviour.requests)
    assert [t["title"] for t in await ck.tasks()] == ["Call the bank"]
    # The tool call is kept with the stored reply, as in the REST history.
    messages = (await ck.rest(f"/conversations/{thread.id.removeprefix('thr_')}/messages")).json()
    assert messages[1]["tool_calls"][0]["name"] == "add_task"


async def test_an_upstream_failure_is_the_friendly_error_as_an_error_event(
    openai_url: str, upstream: FakeUpstream
) -> None:
    upstream.behaviour.script.extend([tool_call("add_task", {"title": "Renew passport"}), fail()])
    ck = ChatKit(openai_url, User())
    thread, events = await ck.create("passport")
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    [task] = await ck.tasks()
    told = f"Here is what I did: added 'Renew passport' (task #{task['id']})."
    assert error.code == "custom" and error.message == f"{ModelUnavailable.detail} {told}"
    assert error.allow_retry
    assert not [e for e in events if isinstance(e, ThreadItemRemovedEvent)]
    # What the tool did is kept; the thread holds the message and the failure, as over REST.
    assert [t["title"] for t in await ck.tasks()] == ["Renew passport"]
    items = await ck.json(
        ItemsListReq(params=ItemsListParams(thread_id=thread.id, order="asc")), ITEMS
    )
    assert [(i.type, i.content[0].text) for i in items.data] == [
        ("user_message", "passport"),
        ("assistant_message", error.message),
    ]


async def test_a_configuration_error_is_an_error_event_that_does_not_invite_a_retry(
    openai_url: str, upstream: FakeUpstream
) -> None:
    upstream.behaviour.script.append(fail(401))
    ck = ChatKit(openai_url, User())
    _, events = await ck.create("add milk")
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.message == ModelMisconfigured.detail and not error.allow_retry


async def test_a_failure_mid_text_takes_the_partial_reply_back(
    database_url: str, fake_upstream: FakeUpstream, upstream: FakeUpstream
) -> None:
    """The turn times out while its text streams: the half-written reply goes, the error
    event says what the chat route says."""
    settings = openai_settings(
        database_url,
        fake_upstream.base_url,
        chat_turn_timeout_s=0.6,
    )
    upstream.behaviour.token_gap_s = 0.2
    upstream.behaviour.script.append(text("one two three four five six seven eight nine ten"))
    async with served(settings) as url:
        ck = ChatKit(url, User())
        _, events = await ck.create("count to ten")
    started = [e for e in events if isinstance(e, ThreadItemUpdatedEvent)]
    assert started, "some text streamed before the time-out"
    removed, error = events[-2:]
    assert isinstance(removed, ThreadItemRemovedEvent) and removed.item_id == started[0].item_id
    assert isinstance(error, ErrorEvent) and error.message == ModelUnavailable.detail


async def test_the_stream_keeps_itself_alive_while_the_model_thinks(
    openai_url: str, upstream: FakeUpstream
) -> None:
    upstream.behaviour.first_token_s = 0.7
    upstream.behaviour.script.append(text("Here you go."))
    ck = ChatKit(openai_url, User())
    request = ThreadsCreateReq(params=ThreadCreateParams(input=said("hi")))
    async with (
        httpx.AsyncClient(base_url=openai_url) as c,
        c.stream("POST", "/chatkit", content=request.model_dump_json(), headers=ck.headers) as r,
    ):
        body = (await r.aread()).decode()
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
    assert ": keep-alive\n\n" in body
    assert body.index(": keep-alive") < body.index("content_part.text_delta")
    events = [EVENT.validate_json(line[6:]) for line in body.splitlines() if line[:6] == "data: "]
    assert reply_text(events) == "Here you go."


async def test_a_client_that_leaves_mid_stream_loses_nothing(
    openai_url: str, upstream: FakeUpstream
) -> None:
    upstream.behaviour.token_gap_s = 0.1
    reply = "Added 'Book the dentist' to your list, and that is all for now."
    upstream.behaviour.script.extend(
        [tool_call("add_task", {"title": "Book the dentist"}), text(reply)]
    )
    ck = ChatKit(openai_url, User())
    request = ThreadsCreateReq(params=ThreadCreateParams(input=said("dentist")))
    async with (
        httpx.AsyncClient(base_url=openai_url) as c,
        c.stream("POST", "/chatkit", content=request.model_dump_json(), headers=ck.headers) as r,
    ):
        async for line in r.aiter_lines():
            if "content_part.text_delta" in line:
                break  # leave mid-sentence
    for _ in range(100):
        threads = await ck.json(ThreadsListReq(params=ThreadListParams()), THREADS)
        items = await ck.json(
            ItemsListReq(params=ItemsListParams(thread_id=threads.data[0].id, order="asc")),
            ITEMS,
        )
        if len(items.data) == 2:
            break
        await asyncio.sleep(0.05)
    assert [i.content[0].text for i in items.data] == ["dentist", reply]
    assert [t["title"] for t in await ck.tasks()] == ["Book the dentist"]


async def test_chatkit_turns_spend_the_chat_routes_budget(database_url: str) -> None:
    async with served(make_settings(database_url, rate_limit_chat="2/minute")) as url:
        user = User()
        ck = ChatKit(url, user)
        async with httpx.AsyncClient(base_url=url) as c:
            r = await c.post(user.url("/chat"), json={"message": "hi"}, headers=user.headers)
        assert r.status_code == 200
        await ck.create("add buy milk")
        refused = await ck.post(ThreadsCreateReq(params=ThreadCreateParams(input=said("again"))))
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert refused.headers["content-type"] == "application/json" and refused.json()["detail"]
        # Nothing was stored for the refused turn; reading is not a turn and is not refused.
        threads = await ck.json(ThreadsListReq(params=ThreadListParams()), THREADS)
        assert len(threads.data) == 2
        assert [t["title"] for t in await ck.tasks()] == ["Buy milk"]
