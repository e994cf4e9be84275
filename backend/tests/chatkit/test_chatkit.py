"""POST /chatkit driven with the `openai-chatkit` package's own types, over real HTTP, on SQLite
and PostgreSQL: threads are the user's conversations, items their messages, turns the chat
route's turn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from chatkit.actions import Action
from chatkit.types import (
    AssistantMessageItem,
    AttachmentCreateParams,
    AttachmentsCreateReq,
    InferenceOptions,
    ItemFeedbackParams,
    ItemsFeedbackReq,
    ItemsListParams,
    ItemsListReq,
    ProgressUpdateEvent,
    StreamOptionsEvent,
    Thread,
    ThreadAddUserMessageParams,
    ThreadCreatedEvent,
    ThreadCreateParams,
    ThreadCustomActionParams,
    ThreadDeleteParams,
    ThreadGetByIdParams,
    ThreadItemAddedEvent,
    ThreadItemUpdatedEvent,
    ThreadListParams,
    ThreadRetryAfterItemParams,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadsUpdateReq,
    ThreadUpdateParams,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
)
from pydantic import TypeAdapter

from tests.chatkit.conftest import (
    ITEMS,
    THREADS,
    ChatKit,
    reply_text,
    said,
    user_items,
)
from tests.conftest import User

THREAD = TypeAdapter(Thread)


def _items_req(thread_id: str, **params: Any) -> ItemsListReq:
    return ItemsListReq(params=ItemsListParams(thread_id=thread_id, **params))


def _text(item: Any) -> str:
    return "".join(part.text for part in item.content)


async def test_a_new_thread_with_add_buy_milk_adds_the_task(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, events = await ck.create("add buy milk")
    # The protocol's order: the thread, the user's message (stored), the options, the reply.
    assert isinstance(events[0], ThreadCreatedEvent)
    assert events[1].type == "thread.item.done" and isinstance(events[1].item, UserMessageItem)
    assert isinstance(events[2], StreamOptionsEvent)
    assert events[-1].type == "thread.item.done"
    assert isinstance(events[-1].item, AssistantMessageItem)
    assert thread.title == "add buy milk"
    assert any(isinstance(e, ProgressUpdateEvent) for e in events)
    # The reply streamed as text deltas into the item it ends with.
    added = [e for e in events if isinstance(e, ThreadItemAddedEvent)]
    deltas = [e for e in events if isinstance(e, ThreadItemUpdatedEvent)]
    assert [a.item.id for a in added] == [events[-1].item.id]
    streamed = "".join(getattr(d.update, "delta", "") for d in deltas)
    assert streamed == reply_text(events)
    assert "Buy milk" in reply_text(events)
    assert [t["title"] for t in await ck.tasks()] == ["Buy milk"]


async def test_a_message_added_to_a_thread_continues_its_conversation(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, first = await ck.create("add buy milk")
    events = await ck.stream(
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread.id, input=said("list my tasks"))
        )
    )
    assert not any(isinstance(e, ThreadCreatedEvent) for e in events)
    assert "Buy milk" in reply_text(events)
    items = await ck.json(_items_req(thread.id, order="asc"), ITEMS)
    assert [(i.type, _text(i)) for i in items.data] == [
        ("user_message", "add buy milk"),
        ("assistant_message", reply_text(first)),
        ("user_message", "list my tasks"),
        ("assistant_message", reply_text(events)),
    ]
    # A streamed user message has the id it is stored under (retry names it).
    assert [u.id for u in user_items(first) + user_items(events)] == [
        items.data[0].id,
        items.data[2].id,
    ]


async def test_threads_and_items_page_as_the_protocol_says(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    ids = [(await ck.create(f"add task number {n}"))[0].id for n in range(3)]
    first = await ck.json(ThreadsListReq(params=ThreadListParams(limit=2)), THREADS)
    assert [t.id for t in first.data] == ids[::-1][:2] and first.has_more
    assert first.after == first.data[-1].id
    rest = await ck.json(
        ThreadsListReq(params=ThreadListParams(limit=2, after=first.after)), THREADS
    )
    assert [t.id for t in rest.data] == ids[:1] and not rest.has_more
    oldest_first = await ck.json(ThreadsListReq(params=ThreadListParams(order="asc")), THREADS)
    assert [t.id for t in oldest_first.data] == ids and not oldest_first.has_more

    await ck.stream(
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=ids[0], input=said("list my tasks"))
        )
    )
    everything = await ck.json(_items_req(ids[0], order="asc"), ITEMS)
    assert len(everything.data) == 4
    seen, after = [], None
    while True:
        page = await ck.json(_items_req(ids[0], order="asc", limit=3, after=after), ITEMS)
        seen += [i.id for i in page.data]
        if not page.has_more:
            break
        after = page.after
    assert seen == [i.id for i in everything.data]
    newest = await ck.json(_items_req(ids[0], order="desc", limit=1), ITEMS)
    assert [i.id for i in newest.data] == [everything.data[-1].id] and newest.has_more
    # threads.get_by_id: the thread with its first page of items.
    got = await ck.json(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=ids[0])), THREAD)
    assert [i.id for i in got.items.data] == [i.id for i in everything.data]


async def test_retry_answers_the_stored_message_again(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, _ = await ck.create("add buy milk")
    asked = await ck.stream(
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread.id, input=said("show my tasks"))
        )
    )
    [question] = user_items(asked)
    events = await ck.stream(
        ThreadsRetryAfterItemReq(
            params=ThreadRetryAfterItemParams(thread_id=thread.id, item_id=question.id)
        )
    )
    # No new thread and no new user message: a new reply to the same one.
    assert not user_items(events) and events[0].type == "stream_options"
    assert "Buy milk" in reply_text(events)
    items = await ck.json(_items_req(thread.id, order="asc"), ITEMS)
    assert [i.type for i in items.data] == ["user_message", "assistant_message"] * 2
    assert items.data[2].id == question.id
    assert _text(items.data[3]) == reply_text(events)
    messages = (await ck.rest(f"/conversations/{thread.id.removeprefix('thr_')}/messages")).json()
    assert [m["content"] for m in messages] == [_text(i) for i in items.data]
    # Only a user message can be answered again.
    r = await ck.post(
        ThreadsRetryAfterItemReq(
            params=ThreadRetryAfterItemParams(thread_id=thread.id, item_id=items.data[3].id)
        )
    )
    assert r.status_code == 422 and "user" in r.json()["detail"]


async def test_deleting_a_thread_deletes_its_messages_not_the_tasks(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, _ = await ck.create("add buy milk")
    kept, _ = await ck.create("add walk the dog")
    r = await ck.post(ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread.id)))
    assert r.status_code == 200 and r.json() == {}
    assert (await ck.post(_items_req(thread.id))).status_code == 404
    cid = thread.id.removeprefix("thr_")
    assert (await ck.rest(f"/conversations/{cid}/messages")).status_code == 404
    listed = await ck.json(ThreadsListReq(params=ThreadListParams()), THREADS)
    assert [t.id for t in listed.data] == [kept.id]
    assert sorted(t["title"] for t in await ck.tasks()) == ["Buy milk", "Walk the dog"]
    again = await ck.post(ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread.id)))
    assert again.status_code == 404


async def test_another_users_thread_is_as_good_as_nonexistent(offline_url: str) -> None:
    owner, stranger = ChatKit(offline_url, User()), ChatKit(offline_url, User())
    thread, events = await owner.create("add buy milk")
    [item] = user_items(events)
    before = await owner.json(_items_req(thread.id), ITEMS)

    def requests(thread_id: str) -> list[Any]:
        return [
            ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)),
            _items_req(thread_id),
            ThreadsAddUserMessageReq(
                params=ThreadAddUserMessageParams(thread_id=thread_id, input=said("add eggs"))
            ),
            ThreadsRetryAfterItemReq(
                params=ThreadRetryAfterItemParams(thread_id=thread_id, item_id=item.id)
            ),
            ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread_id, title="mine now")),
            ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread_id)),
        ]

    for theirs, nobodys, malformed in zip(
        requests(thread.id), requests("thr_2147483647"), requests("thr_x1"), strict=True
    ):
        answers = [await stranger.post(r) for r in (theirs, nobodys, malformed)]
        assert [a.status_code for a in answers] == [404] * 3, theirs
        assert answers[0].json() == answers[1].json() == answers[2].json()
    listed = await stranger.json(ThreadsListReq(params=ThreadListParams()), THREADS)
    assert listed.data == []
    # Nothing of the owner's changed.
    assert await owner.json(_items_req(thread.id), ITEMS) == before
    got = await owner.json(
        ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread.id)), THREAD
    )
    assert got.title == "add buy milk"
    assert [t["title"] for t in await stranger.tasks()] == []


async def test_chatkit_threads_and_rest_conversations_agree(offline_url: str) -> None:
    user = User()
    ck = ChatKit(offline_url, user)
    thread, _ = await ck.create("add buy milk")
    # A conversation begun over REST continues from ChatKit.
    async with httpx.AsyncClient(base_url=offline_url) as c:
        r = await c.post(user.url("/chat"), json={"message": "add call mom"}, headers=user.headers)
    rest_cid = r.json()["conversation_id"]
    await ck.stream(
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(
                thread_id=f"thr_{rest_cid}", input=said("list my tasks")
            )
        )
    )
    renamed = await ck.post(
        ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread.id, title="  Groceries "))
    )
    assert renamed.status_code == 200 and THREAD.validate_json(renamed.content).title == "Groceries"

    threads = await ck.json(ThreadsListReq(params=ThreadListParams(order="asc")), THREADS)
    conversations = (await ck.rest("/conversations")).json()
    assert sorted((f"thr_{c['id']}", c["title"]) for c in conversations) == sorted(
        (t.id, t.title) for t in threads.data
    )
    assert dict((t.id, t.title) for t in threads.data)[f"thr_{rest_cid}"] == "add call mom"
    for t in threads.data:
        items = await ck.json(_items_req(t.id, order="asc"), ITEMS)
        messages = (await ck.rest(f"/conversations/{t.id.removeprefix('thr_')}/messages")).json()
        assert [(f"msg_{m['id']}", m["role"], m["content"]) for m in messages] == [
            (i.id, i.type.removesuffix("_message"), _text(i)) for i in items.data
        ]
    assert len((await ck.json(_items_req(f"thr_{rest_cid}"), ITEMS)).data) == 4


@pytest.mark.parametrize("title", ["", "   ", "x" * 201, "bad\x00title"])
async def test_a_bad_title_is_422_and_changes_nothing(offline_url: str, title: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, _ = await ck.create("add buy milk")
    r = await ck.post(ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread.id, title=title)))
    assert r.status_code == 422 and "title" in r.json()["detail"]
    got = await ck.json(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread.id)), THREAD)
    assert got.title == "add buy milk"


async def test_what_this_server_does_not_offer_is_a_clear_400(offline_url: str) -> None:
    ck = ChatKit(offline_url, User())
    thread, events = await ck.create("add buy milk")
    [item] = user_items(events)
    with_attachment = UserMessageInput(
        content=[UserMessageTextContent(text="add this")],
        attachments=["atc_1"],
        inference_options=InferenceOptions(),
    )
    unsupported = [
        AttachmentsCreateReq(
            params=AttachmentCreateParams(name="a.png", size=10, mime_type="image/png")
        ),
        ThreadsCustomActionReq(
            params=ThreadCustomActionParams(
                thread_id=thread.id, item_id=None, action=Action(type="done", payload={})
            )
        ),
        ItemsFeedbackReq(
            params=ItemFeedbackParams(thread_id=thread.id, item_ids=[item.id], kind="positive")
        ),
        ThreadsCreateReq(params=ThreadCreateParams(input=with_attachment)),
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread.id, input=with_attachment)
        ),
    ]
    for request in unsupported:
        r = await ck.post(request)
        assert r.status_code == 400, r.text
        assert "not supported" in r.json()["detail"]
    threads = await ck.json(ThreadsListReq(params=ThreadListParams()), THREADS)
    assert [t.id for t in threads.data] == [thread.id]
    assert len((await ck.json(_items_req(thread.id), ITEMS)).data) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"type": "threads.explode", "params": {}}',
        b'{"type": "threads.list"}',
        b'{"type": "items.list", "params": {"thread_id": 5}}',
    ],
)
async def test_a_request_chatkit_would_not_send_is_422(offline_url: str, body: bytes) -> None:
    r = await ChatKit(offline_url, User()).post(body)
    assert r.status_code == 422 and r.json()["detail"]


@pytest.mark.parametrize("message", ["", "   ", "x" * 10_001])
async def test_an_invalid_message_is_422_and_stores_nothing(offline_url: str, message: str) -> None:
    ck = ChatKit(offline_url, User())
    r = await ck.post(ThreadsCreateReq(params=ThreadCreateParams(input=said(message))))
    assert r.status_code == 422 and r.json()["detail"].startswith("Message")
    assert (await ck.json(ThreadsListReq(params=ThreadListParams()), THREADS)).data == []


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_no_valid_token_is_401(offline_url: str, token: str | None) -> None:
    ck = ChatKit(offline_url, None)
    if token is not None:
        ck.headers = {"Authorization": f"Bearer {token}"}
    r = await ck.post(ThreadsListReq(params=ThreadListParams()))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "thread_id", ["thr_0", "thr_2147483648", "thr_-1", "thr_\u0661", "thr_", "12", "msg_1"]
)
async def test_an_id_that_is_not_ours_is_404(offline_url: str, thread_id: str) -> None:
    ck = ChatKit(offline_url, User())
    r = await ck.post(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)))
    assert r.status_code == 404 and r.json() == {"detail": "Thread not found"}
