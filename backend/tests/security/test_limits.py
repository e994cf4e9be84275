"""Limits the chat and the tools cannot get around (issue 11, OWASP LLM10 unbounded consumption).

The chat agent and outside MCP clients spend the same task-write budget as the REST routes, one
tool call at a time; MCP clients have a budget of their own for every call; one chat turn runs a
bounded number of tool calls, however many one model step asks for, and says what it did not
do; task lists come in pages. The chat budget pays for turns that run, not for requests refused
for their content or answered from an Idempotency-Key record.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import User, make_settings, start_app
from tests.security.support import snapshot

CHAT = {"message": "show my tasks"}


# --- what the chat budget pays for ------------------------------------------------------------


async def test_rejected_chat_requests_do_not_spend_the_chat_budget(database_url) -> None:
    running = await start_app(make_settings(database_url, rate_limit_chat="2/minute"))
    user = User()
    try:
        async with running.client() as client:
            for body in ({"message": ""}, {"message": "x" * 10_001}, {"nope": 1}):
                for _ in range(3):
                    r = await client.post(user.url("/chat"), json=body, headers=user.headers)
                    assert r.status_code == 422, r.text
            for _ in range(3):
                r = await client.post(
                    user.url("/chat"),
                    json={"conversation_id": 2**31 - 1, "message": "hi"},
                    headers=user.headers,
                )
                assert r.status_code == 404, r.text
            stored = await snapshot(running.app, user.id)
            assert stored["conversations"] == [] and stored["messages"] == []
            # Twelve refusals later, the whole budget is still there.
            answers = [
                await client.post(user.url("/chat"), json=CHAT, headers=user.headers)
                for _ in range(3)
            ]
            assert [r.status_code for r in answers] == [200, 200, 429]
            assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]
    finally:
        await running.stop()


async def test_replays_of_an_idempotency_key_do_not_spend_the_chat_budget(database_url) -> None:
    running = await start_app(make_settings(database_url, rate_limit_chat="2/minute"))
    user = User()
    headers = {**user.headers, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    try:
        async with running.client() as client:
            # Eight at once: one runs the turn, seven wait for it and replay its answer.
            answers = await asyncio.gather(
                *(client.post(user.url("/chat"), json=CHAT, headers=headers) for _ in range(8))
            )
            assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
            assert len({r.text for r in answers}) == 1
            assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 7
            # ...and eight more after it finished.
            again = await asyncio.gather(
                *(client.post(user.url("/chat"), json=CHAT, headers=headers) for _ in range(8))
            )
            assert [r.status_code for r in again] == [200] * 8
            assert {r.text for r in again} == {answers[0].text}
            # Sixteen answers cost one turn: one more turn fits in the budget of two.
            r = await client.post(user.url("/chat"), json=CHAT, headers=user.headers)
            assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "0"
            r = await client.post(user.url("/chat"), json=CHAT, headers=user.headers)
            assert r.status_code == 429
            stored = await snapshot(running.app, user.id)
            assert len(stored["messages"]) == 4  # two turns, each a question and an answer
    finally:
        await running.stop()
