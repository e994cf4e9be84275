"""Lanes in the running app (P19): with one lane a worker, turns still wait for the model side by
side (no turn holds its lane while the model works), JSON and streamed turns alike, and each
turn's answer and stored history are whole."""

from __future__ import annotations

import asyncio
import json

import httpx
from fakes.openai_upstream import FakeUpstream

from tests.conftest import User, openai_settings, start_app


async def _history(c: httpx.AsyncClient, user: User, cid: int) -> list[str]:
    r = await c.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
    assert r.status_code == 200
    return [m["role"] for m in r.json()]


async def _streamed(c: httpx.AsyncClient, user: User, message: str) -> dict[str, object]:
    """The streamed turn's chunks, read to `[DONE]`."""
    chunks: list[dict[str, object]] = []
    async with c.stream(
        "POST", user.url("/chat/stream"), json={"message": message}, headers=user.headers
    ) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
    assert chunks[-1]["type"] == "finish", chunks[-1]
    start = chunks[0]
    assert start["type"] == "start"
    return {"conversation_id": start["messageMetadata"]["conversationId"], "chunks": chunks}  # type: ignore[index]


async def test_with_one_lane_turns_wait_for_the_model_side_by_side(
    upstream: FakeUpstream, database_url: str
) -> None:
    upstream.behaviour.delay_s = 0.3
    running = await start_app(openai_settings(database_url, upstream.base_url, chat_lanes=1))
    users = [User() for _ in range(3)]
    try:
        async with running.client() as c:
            answers = await asyncio.gather(
                *(
                    c.post(u.url("/chat"), json={"message": f"add task {i}"}, headers=u.headers)
                    for i, u in enumerate(users)
                )
            )
            assert [a.status_code for a in answers] == [200, 200, 200]
            # Three turns' model calls were in flight at once: none held the one lane.
            assert upstream.behaviour.max_in_flight == 3

            upstream.behaviour.max_in_flight = 0
            streamed = await asyncio.gather(
                *(_streamed(c, u, f"add streamed task {i}") for i, u in enumerate(users))
            )
            assert upstream.behaviour.max_in_flight == 3
            for user, answer, turn in zip(users, answers, streamed, strict=True):
                tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
                assert sorted(t["title"] for t in tasks) == sorted(
                    [answer.json()["tool_calls"][0]["arguments"]["title"]]
                    + [
                        ch["input"]["title"]  # type: ignore[index]
                        for ch in turn["chunks"]  # type: ignore[attr-defined]
                        if ch["type"] == "tool-input-available"
                    ]
                )
                for cid in (answer.json()["conversation_id"], turn["conversation_id"]):
                    assert await _history(c, user, cid) == ["user", "assistant"]  # type: ignore[arg-type]
    finally:
        await running.stop()
