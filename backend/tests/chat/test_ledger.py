"""The turn ledger on real databases: what each step stores, and the Idempotency-Key protocol
(claim, wait, replay, resume) without the model or HTTP in between."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import make_settings
from todochat.chat.ledger import KeyedLedger, OpenTurn, Replay, TurnLedger
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversations
from todochat.conversations.schemas import ToolCall
from todochat.db import Database, create_engine
from todochat.errors import ModelUnavailable
from todochat.idempotency.service import IdempotencyKey, IdempotencyKeyInUse, IdempotencyKeyReused

CALL = ToolCall(id="call_1", name="add_task", arguments={"title": "Milk"}, result={"task_id": 1})


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(make_settings(database_url)))
    yield database
    await database.dispose()


def _user() -> str:
    return f"ledger-{uuid.uuid4().hex[:12]}"


def _key(*, wait_s: float = 0.3, lease_s: float = 60) -> IdempotencyKey:
    return IdempotencyKey(key=uuid.uuid4().hex, scope="POST /chat", wait_s=wait_s, lease_s=lease_s)


async def _messages(db: Database, user_id: str, conversation_id: int) -> list[tuple[str, str]]:
    stored = await db.run(
        conversations.list_messages,
        user_id=user_id,
        conversation_id=conversation_id,
        after_id=0,
        limit=100,
    )
    return [(m.role, m.content) for m in stored]


def _reply(turn: OpenTurn, text: str = "Added Milk.") -> ChatResponse:
    return ChatResponse(conversation_id=turn.conversation_id, response=text, tool_calls=[CALL])


async def test_a_plain_turn_stores_the_message_first_and_the_reply_last(db: Database) -> None:
    user_id = _user()
    async with TurnLedger(
        db=db, user_id=user_id, request=ChatRequest(message="add milk"), history_limit=20
    ) as ledger:
        turn = await ledger.begin()
        assert isinstance(turn, OpenTurn) and turn.history == [] and turn.effect_scope is None
        assert await _messages(db, user_id, turn.conversation_id) == [("user", "add milk")]
        await ledger.finish(turn, _reply(turn))
    stored = await db.run(
        conversations.list_messages,
        user_id=user_id,
        conversation_id=turn.conversation_id,
        after_id=0,
        limit=100,
    )
    assert [(m.role, m.content) for m in stored] == [
        ("user", "add milk"),
        ("assistant", "Added Milk."),
    ]
    assert stored[1].tool_calls == [CALL]

    # The next turn of the conversation sees both as its history.
    request = ChatRequest(conversation_id=turn.conversation_id, message="what's pending?")
    async with TurnLedger(db=db, user_id=user_id, request=request, history_limit=20) as ledger:
        following = await ledger.begin()
        assert isinstance(following, OpenTurn)
        assert [m.content for m in following.history] == ["add milk", "Added Milk."]


async def test_a_failed_turn_stores_the_apology_with_what_the_tools_did(db: Database) -> None:
    user_id = _user()
    async with TurnLedger(
        db=db, user_id=user_id, request=ChatRequest(message="add milk"), history_limit=20
    ) as ledger:
        turn = await ledger.begin()
        assert isinstance(turn, OpenTurn)
        await ledger.fail(turn, [CALL])
    assert await _messages(db, user_id, turn.conversation_id) == [
        ("user", "add milk"),
        ("assistant", ModelUnavailable.detail),
    ]


async def test_a_keyed_turn_is_answered_once_then_replayed(db: Database) -> None:
    user_id, key = _user(), _key()
    request = ChatRequest(message="add milk")
    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=key
    ) as ledger:
        turn = await ledger.begin()
        assert isinstance(turn, OpenTurn) and turn.effect_scope and not turn.resumed
        response = _reply(turn)
        await ledger.finish(turn, response)

    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=key
    ) as again:
        replay = await again.begin()
    assert replay == Replay(response)
    # The repeat stored nothing.
    assert len(await _messages(db, user_id, turn.conversation_id)) == 2

    other = ChatRequest(message="add bread")
    with pytest.raises(IdempotencyKeyReused):
        await KeyedLedger(db=db, user_id=user_id, request=other, history_limit=20, key=key).begin()


async def test_a_running_keyed_turn_makes_a_repeat_wait_then_409(db: Database) -> None:
    user_id, key = _user(), _key(wait_s=0.3)
    request = ChatRequest(message="add milk")
    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=key
    ) as owner:
        turn = await owner.begin()
        assert isinstance(turn, OpenTurn)
        with pytest.raises(IdempotencyKeyInUse):
            await KeyedLedger(
                db=db, user_id=user_id, request=request, history_limit=20, key=key
            ).begin()
        await owner.finish(turn, _reply(turn))


@pytest.mark.parametrize("how", ["error", "failure"])
async def test_an_abandoned_keyed_turn_is_resumed_on_its_stored_message(
    db: Database, how: str
) -> None:
    """Leaving the ledger on an error, or after storing a model failure, lets go of the lease:
    the repeat takes the turn over, on the message already stored."""
    user_id, key = _user(), _key()
    request = ChatRequest(message="add milk")
    ledger = KeyedLedger(db=db, user_id=user_id, request=request, history_limit=20, key=key)
    with pytest.raises(RuntimeError, match="the agent broke"):
        async with ledger:
            first = await ledger.begin()
            assert isinstance(first, OpenTurn)
            if how == "failure":
                await ledger.fail(first, [CALL])
            raise RuntimeError("the agent broke")

    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=key
    ) as retry:
        resumed = await retry.begin()
        assert isinstance(resumed, OpenTurn) and resumed.resumed
        assert (resumed.conversation_id, resumed.message_id) == (
            first.conversation_id,
            first.message_id,
        )
        # The same scope: the tool calls of the retry get the same effect keys.
        assert resumed.effect_scope == first.effect_scope
        await retry.finish(resumed, _reply(resumed))
    roles = [role for role, _ in await _messages(db, user_id, first.conversation_id)]
    assert roles == (
        ["user", "assistant"] if how == "error" else ["user", "assistant", "assistant"]
    )


async def test_a_live_owner_keeps_its_short_lease_however_long_the_turn_takes(
    db: Database,
) -> None:
    """The heartbeat: a turn running for four times its lease is never taken over."""
    user_id, request = _user(), ChatRequest(message="add milk")
    key = _key(lease_s=1.0)
    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=key
    ) as owner:
        turn = await owner.begin()
        assert isinstance(turn, OpenTurn)
        started = time.monotonic()
        while time.monotonic() - started < 4 * key.lease_s:
            # The model is "thinking"; every repeat meanwhile waits and is told to come back.
            repeat = KeyedLedger(
                db=db, user_id=user_id, request=request, history_limit=20, key=_same(key)
            )
            with pytest.raises(IdempotencyKeyInUse):
                await repeat.begin()
            await asyncio.sleep(0.3)
        await owner.finish(turn, _reply(turn))
    replay = await KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=_same(key)
    ).begin()
    assert isinstance(replay, Replay)
    assert [role for role, _ in await _messages(db, user_id, turn.conversation_id)] == [
        "user",
        "assistant",
    ]


async def test_a_dead_owners_turn_is_taken_over_once_its_lease_runs_out(db: Database) -> None:
    """An owner that stops renewing (its process died after `begin`) loses the turn within
    the lease; the repeat that waits resumes it on the stored message."""
    user_id, request = _user(), ChatRequest(message="add milk")
    key = _key(lease_s=1.0)
    dead = KeyedLedger(db=db, user_id=user_id, request=request, history_limit=20, key=key)
    first = await dead.begin()
    assert isinstance(first, OpenTurn)
    await dead._let_go()  # its heartbeat stops, as under SIGKILL; nothing is given back
    died = time.monotonic()
    async with KeyedLedger(
        db=db, user_id=user_id, request=request, history_limit=20, key=_same(key, wait_s=5)
    ) as retry:
        resumed = await retry.begin()
        waited = time.monotonic() - died
        assert isinstance(resumed, OpenTurn) and resumed.resumed
        assert resumed.message_id == first.message_id
        await retry.finish(resumed, _reply(resumed))
    assert 0.5 < waited < key.lease_s + 1.0


def _same(key: IdempotencyKey, *, wait_s: float = 0.1) -> IdempotencyKey:
    """The same key and policy, as a repeat of the request would carry it."""
    return IdempotencyKey(key=key.key, scope=key.scope, wait_s=wait_s, lease_s=key.lease_s)
