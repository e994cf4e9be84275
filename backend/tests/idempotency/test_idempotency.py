"""Idempotency-Key on task creation and chat, on both engines: repeats replay the first answer,
concurrent repeats act once, another body is 422, keys are per user, shared across instances,
and expire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from tests.conftest import User, make_settings, start_app
from todochat.models import IdempotencyRecord

REPLAYED = "Idempotent-Replayed"


def _key() -> str:
    return f"key-{uuid.uuid4()}"


def _post_task(client: httpx.AsyncClient, user: User, key: str, body: dict) -> object:
    return client.post(
        user.url("/tasks"), json=body, headers={**user.headers, "Idempotency-Key": key}
    )


async def _tasks(client: httpx.AsyncClient, user: User) -> list[dict]:
    r = await client.get(user.url("/tasks"), headers=user.headers)
    assert r.status_code == 200
    return r.json()


async def _messages(client: httpx.AsyncClient, user: User, conversation_id: int) -> list[dict]:
    r = await client.get(
        user.url(f"/conversations/{conversation_id}/messages"), headers=user.headers
    )
    assert r.status_code == 200
    return r.json()


async def test_repeated_task_creation_returns_the_first_task_and_creates_one(client, user) -> None:
    key = _key()
    first = await _post_task(client, user, key, {"title": "Pay rent"})
    again = await _post_task(client, user, key, {"title": "Pay rent"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert [t["title"] for t in await _tasks(client, user)] == ["Pay rent"]


async def test_same_key_with_another_body_is_422_and_writes_nothing(client, user) -> None:
    key = _key()
    assert (await _post_task(client, user, key, {"title": "Pay rent"})).status_code == 201
    r = await _post_task(client, user, key, {"title": "Pay the rent twice"})
    assert r.status_code == 422
    assert r.json() == {"detail": "This Idempotency-Key was already used with a different request"}
    assert [t["title"] for t in await _tasks(client, user)] == ["Pay rent"]


async def test_without_a_key_each_post_creates_a_task(client, user) -> None:
    for _ in range(2):
        r = await client.post(user.url("/tasks"), json={"title": "Twice"}, headers=user.headers)
        assert r.status_code == 201 and REPLAYED not in r.headers
    assert [t["title"] for t in await _tasks(client, user)] == ["Twice", "Twice"]


async def test_keys_belong_to_one_user(client, user, other_user) -> None:
    key = _key()
    mine = await _post_task(client, user, key, {"title": "Same words"})
    theirs = await _post_task(client, other_user, key, {"title": "Same words"})
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert theirs.json()["user_id"] == other_user.id != mine.json()["user_id"]
    assert len(await _tasks(client, other_user)) == 1


async def test_invalid_keys_are_422(client, user) -> None:
    for bad in (b"x" * 256, b"tab\there", "é-accent".encode(), b""):
        r = await client.post(
            user.url("/tasks"),
            json={"title": "Nope"},
            headers=[*user.headers.items(), ("Idempotency-Key", bad)],
        )
        assert r.status_code == 422, bad
        assert r.json()["detail"].startswith("Idempotency-Key"), r.json()
    assert await _tasks(client, user) == []


async def test_a_key_of_the_chat_route_is_not_replayed_on_the_task_route(client, user) -> None:
    key = _key()
    r = await client.post(
        user.url("/chat"),
        json={"message": "add water the plants"},
        headers={**user.headers, "Idempotency-Key": key},
    )
    assert r.status_code == 200
    r = await _post_task(client, user, key, {"title": "Water the plants"})
    assert r.status_code == 422
    assert [t["title"] for t in await _tasks(client, user)] == ["Water the plants"]


async def test_concurrent_repeats_of_a_task_creation_act_once(client, user) -> None:
    key = _key()
    answers = await asyncio.gather(
        *[_post_task(client, user, key, {"title": "Only once"}) for _ in range(8)]
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(REPLAYED not in r.headers for r in answers) == 1
    assert [t["title"] for t in await _tasks(client, user)] == ["Only once"]


async def test_repeated_chat_turn_replays_the_answer_without_acting_again(client, user) -> None:
    key = _key()
    headers = {**user.headers, "Idempotency-Key": key}
    body = {"message": "add buy oat milk"}
    first = await client.post(user.url("/chat"), json=body, headers=headers)
    again = await client.post(user.url("/chat"), json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers[REPLAYED] == "true"
    assert [t["title"] for t in await _tasks(client, user)] == ["Buy oat milk"]
    messages = await _messages(client, user, first.json()["conversation_id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    r = await client.get(user.url("/conversations"), headers=user.headers)
    assert len(r.json()) == 1


async def test_chat_key_with_another_message_is_422(client, user) -> None:
    headers = {**user.headers, "Idempotency-Key": _key()}
    first = await client.post(
        user.url("/chat"), json={"message": "add buy apples"}, headers=headers
    )
    assert first.status_code == 200
    r = await client.post(user.url("/chat"), json={"message": "add buy pears"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"] == "This Idempotency-Key was already used with a different request"
    assert [t["title"] for t in await _tasks(client, user)] == ["Buy apples"]


async def test_concurrent_repeats_of_a_chat_turn_act_once(client, user) -> None:
    headers = {**user.headers, "Idempotency-Key": _key()}
    body = {"message": "add renew the passport"}
    answers = await asyncio.gather(
        *[client.post(user.url("/chat"), json=body, headers=headers) for _ in range(4)]
    )
    # The repeats wait for the first turn (IDEMPOTENCY_WAIT_S) and replay its answer.
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert all(r.json() == answers[0].json() for r in answers)
    assert sum(REPLAYED not in r.headers for r in answers) == 1
    assert [t["title"] for t in await _tasks(client, user)] == ["Renew the passport"]
    messages = await _messages(client, user, answers[0].json()["conversation_id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]


async def test_a_repeat_that_cannot_wait_gets_a_clean_409(database_url, user) -> None:
    # No waiting at all: a repeat that finds the first turn running answers 409 at once.
    running = await start_app(make_settings(database_url, idempotency_wait_s=0))
    try:
        async with running.client() as c:
            headers = {**user.headers, "Idempotency-Key": _key()}
            body = {"message": "add call the plumber"}
            answers = await asyncio.gather(
                *[c.post(user.url("/chat"), json=body, headers=headers) for _ in range(4)]
            )
            codes = sorted(r.status_code for r in answers)
            assert codes[0] == 200
            assert set(codes) <= {200, 409}
            for r in answers:
                if r.status_code == 409:
                    assert r.headers["Retry-After"]
                    assert r.json()["detail"].startswith("A request with this Idempotency-Key")
            assert [t["title"] for t in await _tasks(c, user)] == ["Call the plumber"]
    finally:
        await running.stop()


async def test_keys_are_shared_by_instances_on_one_database(database_url, user) -> None:
    a = await start_app(make_settings(database_url))
    b = await start_app(make_settings(database_url))
    try:
        key = _key()
        async with a.client() as ca, b.client() as cb:
            first = await _post_task(ca, user, key, {"title": "Across instances"})
            again = await _post_task(cb, user, key, {"title": "Across instances"})
            assert again.headers[REPLAYED] == "true" and again.json() == first.json()
            assert len(await _tasks(cb, user)) == 1
    finally:
        await a.stop()
        await b.stop()


async def test_an_expired_key_acts_again(app, client, user) -> None:
    key = _key()
    first = await _post_task(client, user, key, {"title": "Old errand"})
    assert first.status_code == 201

    async def age(session) -> None:
        # 25 hours old: past the 24-hour expiry.
        await session.execute(
            sa.update(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == key)
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )

    await app.state.database.run(age)
    again = await _post_task(client, user, key, {"title": "New errand"})
    assert again.status_code == 201 and REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert sorted(t["title"] for t in await _tasks(client, user)) == ["New errand", "Old errand"]
