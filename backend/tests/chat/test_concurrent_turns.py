"""Turns of one conversation run one at a time (S3): a second message while the first is being
answered (two tabs, a double click without a key) gets a clean 409 with Retry-After and changes
nothing; the stored history never interleaves, and the next turn's model sees the turn before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fakes.openai_upstream import FakeUpstream

from tests.conftest import RunningApp, User, make_settings, openai_settings, start_app
from todochat.chat.ledger import KeyedLedger, OpenTurn, TurnLedger
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversations
from todochat.conversations.service import ConversationBusy, ConversationMovedOn
from todochat.db import Database, create_engine
from todochat.idempotency.service import IdempotencyKey


@pytest.fixture
async def slow_app(upstream: FakeUpstream, database_url: str) -> AsyncIterator[RunningApp]:
    upstream.behaviour.delay_s = 0.6  # two model calls a turn: 1.2 s in flight
    running = await start_app(openai_settings(database_url, upstream.base_url))
    yield running
    await running.stop()


async def _history(c: httpx.AsyncClient, user: User, cid: int) -> list[tuple[str, str]]:
    r = await c.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
    assert r.status_code == 200
    return [(m["role"], m["content"]) for m in r.json()]


async def test_a_second_message_while_the_first_is_answered_is_409_and_changes_nothing(
    slow_app: RunningApp, upstream: FakeUpstream
) -> None:
    user = User()
    async with slow_app.client() as c:
        opened = await c.post(user.url("/chat"), json={"message": "add rice"}, headers=user.headers)
        cid = opened.json()["conversation_id"]
        first = asyncio.create_task(
            c.post(
                user.url("/chat"),
                json={"message": "add beans", "conversation_id": cid},
                headers=user.headers,
            )
        )
        await asyncio.sleep(0.3)  # the first is with the model
        second = await c.post(
            user.url("/chat"),
            json={"message": "add lentils", "conversation_id": cid},
            headers=user.headers,
        )
        assert second.status_code == 409
        assert second.headers["Retry-After"] == "2"
        assert second.json() == {"detail": ConversationBusy.detail}
        answered = await first
        assert answered.status_code == 200, answered.text
        # Retried once the first is over: it runs, and its model sees the turn before.
        upstream.behaviour.requests.clear()
        retried = await c.post(
            user.url("/chat"),
            json={"message": "add lentils", "conversation_id": cid},
            headers=user.headers,
        )
        assert retried.status_code == 200, retried.text
        history = await _history(c, user, cid)
        tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
    seen = str(upstream.behaviour.requests[0]["messages"])
    assert "add beans" in seen and answered.json()["response"] in seen
    assert [role for role, _ in history] == ["user", "assistant"] * 3
    assert [text for role, text in history if role == "user"] == [
        "add rice",
        "add beans",
        "add lentils",
    ]
    assert sorted(t["title"] for t in tasks) == ["add beans", "add lentils", "add rice"]


async def test_concurrent_messages_to_one_conversation_never_interleave(
    slow_app: RunningApp,
) -> None:
    """Five tabs send at once; each retries on 409. Every reply follows its own question."""
    user = User()
    async with slow_app.client() as c:
        opened = await c.post(user.url("/chat"), json={"message": "hello"}, headers=user.headers)
        cid = opened.json()["conversation_id"]

        async def tab(n: int) -> int:
            busy = 0
            while True:
                r = await c.post(
                    user.url("/chat"),
                    json={"message": f"add errand {n}", "conversation_id": cid},
                    headers=user.headers,
                )
                if r.status_code == 200:
                    return busy
                assert r.status_code == 409 and "Retry-After" in r.headers, r.text
                busy += 1
                await asyncio.sleep(0.2)

        refusals = await asyncio.gather(*(tab(n) for n in range(5)))
        r = await c.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
        messages = r.json()
    assert sum(refusals) >= 4  # all but one were refused at least once
    assert [m["role"] for m in messages] == ["user", "assistant"] * 6
    # The fake model adds a task titled as the question it read: each reply's tool call
    # names the question just before it.
    for question, reply in zip(messages[2::2], messages[3::2], strict=True):
        [call] = reply["tool_calls"]
        assert call["arguments"]["title"] == question["content"], (question, reply)


# --- the ledger, without HTTP ----------------------------------------------------------------
@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(make_settings(database_url)))
    yield database
    await database.dispose()


def _user() -> str:
    return f"turns-{uuid.uuid4().hex[:12]}"


async def _open(db: Database, user_id: str) -> int:
    async with TurnLedger(
        db=db, user_id=user_id, request=ChatRequest(message="hello"), history_limit=20
    ) as ledger:
        turn = await ledger.begin()
        assert isinstance(turn, OpenTurn)
        await ledger.finish(turn, _reply(turn))
    return turn.conversation_id


def _reply(turn: OpenTurn) -> ChatResponse:
    return ChatResponse(conversation_id=turn.conversation_id, response="Done.", tool_calls=[])


async def test_a_live_turn_holds_its_conversation_past_the_lease(db: Database) -> None:
    user_id = _user()
    cid = await _open(db, user_id)
    request = ChatRequest(message="add milk", conversation_id=cid)
    async with TurnLedger(
        db=db, user_id=user_id, request=request, history_limit=20, lease_s=1.0
    ) as owner:
        turn = await owner.begin()
        assert isinstance(turn, OpenTurn)
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            with pytest.raises(ConversationBusy):
                await TurnLedger(db=db, user_id=user_id, request=request, history_limit=20).begin()
            await asyncio.sleep(0.3)
        await owner.finish(turn, _reply(turn))
    # Over: the conversation takes the next message at once.
    async with TurnLedger(db=db, user_id=user_id, request=request, history_limit=20) as nxt:
        assert isinstance(await nxt.begin(), OpenTurn)


async def test_an_error_gives_the_conversation_back_at_once(db: Database) -> None:
    user_id = _user()
    cid = await _open(db, user_id)
    request = ChatRequest(message="add milk", conversation_id=cid)
    with pytest.raises(RuntimeError):
        async with TurnLedger(db=db, user_id=user_id, request=request, history_limit=20) as led:
            await led.begin()
            raise RuntimeError("the agent broke")
    async with TurnLedger(db=db, user_id=user_id, request=request, history_limit=20) as nxt:
        assert isinstance(await nxt.begin(), OpenTurn)


async def test_a_dead_keyed_turn_overtaken_by_a_later_message_is_not_answered_out_of_order(
    db: Database,
) -> None:
    """The owner died after storing its question; once its lease ran out another message was
    answered. Its retry is refused (ConversationMovedOn) rather than putting its reply after
    another question, and stores nothing."""
    user_id = _user()
    cid = await _open(db, user_id)
    key = IdempotencyKey(key=uuid.uuid4().hex, scope="POST /chat", wait_s=0.1, lease_s=1.0)
    dead_request = ChatRequest(message="add milk", conversation_id=cid)
    dead = KeyedLedger(db=db, user_id=user_id, request=dead_request, history_limit=20, key=key)
    assert isinstance(await dead.begin(), OpenTurn)
    await dead._let_go()  # its heartbeat stops, as under SIGKILL
    await asyncio.sleep(1.2)
    later = ChatRequest(message="add bread", conversation_id=cid)
    async with TurnLedger(db=db, user_id=user_id, request=later, history_limit=20) as other:
        turn = await other.begin()
        assert isinstance(turn, OpenTurn)
        await other.finish(turn, _reply(turn))
    retry_key = IdempotencyKey(key=key.key, scope=key.scope, wait_s=0.1, lease_s=1.0)
    with pytest.raises(ConversationMovedOn):
        await KeyedLedger(
            db=db, user_id=user_id, request=dead_request, history_limit=20, key=retry_key
        ).begin()
    stored = await db.run(
        conversations.list_messages, user_id=user_id, conversation_id=cid, after_id=0, limit=20
    )
    assert [(m.role, m.content) for m in stored] == [
        ("user", "hello"),
        ("assistant", "Done."),
        ("user", "add milk"),
        ("user", "add bread"),
        ("assistant", "Done."),
    ]
