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
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fakes.openai_upstream import FakeUpstream, text, tool_calls
from fastapi import FastAPI

from tests.conftest import RunningApp, User, make_settings, start_app
from tests.faults import LogCapture
from tests.mcp_support import LiveServer, data, error_text, http_client, stdio_client
from tests.security.support import snapshot
from todochat.agent.offline.cleaning import readable_part
from todochat.models import metadata, utcnow

CHAT = {"message": "show my tasks"}
CAP = 20  # AGENT_MAX_TOOL_CALLS by default
# Budgets here are per day: the sliding window forgives a little at each window boundary, and a
# test that crossed one would see a write more than it counted on.
# The finding's message: as many "milk"s as fit in the 10,000-character limit.
MILK = "add these: " + ", ".join(["milk"] * ((10_000 - 9) // 6))


async def _titles(client: httpx.AsyncClient, user: User) -> list[str]:
    r = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
    assert r.status_code == 200, r.text
    return [t["title"] for t in r.json()]


async def _chat(client: httpx.AsyncClient, user: User, message: str) -> dict[str, Any]:
    r = await client.post(user.url("/chat"), json={"message": message}, headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _scripted(database_url: str, upstream: FakeUpstream, **overrides: Any) -> RunningApp:
    """An app with the default limits whose model is the scripted fake upstream."""
    return await start_app(
        make_settings(
            database_url,
            model_provider="openai",
            openai_api_key="test",
            openai_base_url=upstream.base_url,
            **overrides,
        )
    )


# --- chat writes spend the task-write budget, one tool call at a time --------------------------


async def test_bulk_chat_after_a_429_creates_nothing(database_url) -> None:
    running = await start_app(make_settings(database_url, rate_limit_task_writes="3/day"))
    user = User()
    assert len(MILK) <= 10_000
    try:
        async with running.client() as client:
            codes = [
                (
                    await client.post(
                        user.url("/tasks"), json={"title": f"rest {i}"}, headers=user.headers
                    )
                ).status_code
                for i in range(4)
            ]
            assert codes == [201, 201, 201, 429]

            body = await _chat(client, user, MILK)

            assert await _titles(client, user) == ["rest 2", "rest 1", "rest 0"]
            assert 0 < len(body["tool_calls"]) <= CAP
            for call in body["tool_calls"]:
                assert call["result"]["refused"] == "rate_limit", call
                assert "too many changes" in call["result"]["error"]
            # The answer says nothing was done, and never that something was.
            assert body["response"].startswith("I did not change any task.")
            assert "added" not in body["response"].lower()
            assert "Try again in" in body["response"]
    finally:
        await running.stop()


async def test_bulk_chat_creates_no_more_than_the_write_budget(database_url) -> None:
    running = await start_app(make_settings(database_url, rate_limit_task_writes="5/day"))
    user = User()
    try:
        async with running.client() as client:
            body = await _chat(
                client, user, "add these: " + ", ".join(f"egg {i}" for i in range(9))
            )

            assert sorted(await _titles(client, user)) == [f"Egg {i}" for i in range(5)]
            outcomes = [
                c["result"].get("status", c["result"].get("refused")) for c in body["tool_calls"]
            ]
            assert outcomes == ["created"] * 5 + ["rate_limit"] * 4
            reply = body["response"]
            assert reply.startswith("Here is what I did: added 'Egg 0'")
            assert "Not done: add 'Egg 5'; add 'Egg 6'; add 'Egg 7'; add 'Egg 8'." in reply
            # The REST routes see the same budget, used up.
            r = await client.post(
                user.url("/tasks"), json={"title": "one more"}, headers=user.headers
            )
            assert r.status_code == 429
    finally:
        await running.stop()


# --- one turn runs a bounded number of tool calls ---------------------------------------------


async def test_bulk_delete_in_one_message_is_capped_and_says_what_was_not_done(
    client, user
) -> None:
    ids = []
    for i in range(CAP + 10):
        r = await client.post(user.url("/tasks"), json={"title": f"t{i}"}, headers=user.headers)
        ids.append(r.json()["id"])

    body = await _chat(client, user, "delete tasks " + " ".join(str(i) for i in ids))

    calls = body["tool_calls"]
    assert [c["name"] for c in calls] == ["delete_task"] * CAP
    assert [c["arguments"]["task_id"] for c in calls] == ids[:CAP]
    assert sorted(await _titles(client, user)) == sorted(f"t{i}" for i in range(CAP, CAP + 10))
    reply = body["response"]
    assert reply.startswith("Here is what I did: deleted 't0' (task #")
    assert (
        f"Not done: 10 more actions (delete 10 tasks; for example delete task #{ids[CAP]};" in reply
    )


async def test_the_cap_counts_calls_across_steps_and_within_one_step(
    database_url, upstream: FakeUpstream
) -> None:
    running = await _scripted(database_url, upstream)
    user = User()
    upstream.behaviour.script.append(
        tool_calls(*[("add_task", {"title": f"a{i}"}) for i in range(15)])
    )
    upstream.behaviour.script.append(
        tool_calls(*[("add_task", {"title": f"b{i}"}) for i in range(15)])
    )
    upstream.behaviour.script.append(text("I added all 30 tasks!"))
    try:
        async with running.client() as client:
            body = await _chat(client, user, "add thirty tasks")
            # The claim of the model's third step is never asked for: the turn ended after
            # the second, with the runtime's own account.
            assert [m["text"] for m in upstream.behaviour.script] == ["I added all 30 tasks!"]
            upstream.behaviour.script.clear()
            titles = await _titles(client, user)
            assert sorted(titles) == sorted(
                [f"a{i}" for i in range(15)] + [f"b{i}" for i in range(5)]
            )
            assert len(body["tool_calls"]) == CAP
            assert "all 30" not in body["response"]
            assert (
                "Not done: 10 more actions (add 10 tasks; for example add 'b5';" in body["response"]
            )
    finally:
        await running.stop()


async def test_calls_past_the_cap_in_a_later_step_end_the_turn_without_running(
    database_url, upstream: FakeUpstream
) -> None:
    running = await _scripted(database_url, upstream)
    user = User()
    upstream.behaviour.script.append(
        tool_calls(*[("add_task", {"title": f"a{i}"}) for i in range(CAP)])
    )
    upstream.behaviour.script.append(
        tool_calls(("delete_task", {"task_id": 1}), ("add_task", {"title": "late"}))
    )
    try:
        async with running.client() as client:
            body = await _chat(client, user, "go")
            assert len(await _titles(client, user)) == CAP
            assert "late" not in await _titles(client, user)
            assert len(body["tool_calls"]) == CAP
            assert body["response"].startswith("Here is what I did: added 'a0' (task #")
            assert "Not done: 2 more actions (delete 1 task, add 1 task;" in body["response"]
    finally:
        await running.stop()


def _read_items(message: str) -> list[str]:
    """The items of an `add these: milk, milk, …` message that the offline model reads."""
    read = readable_part(message)
    return [item for item in read.split(":", 1)[1].split(",") if item.strip()]


async def test_a_bulk_turn_writes_a_bounded_number_of_log_lines(database_url) -> None:
    running = await start_app(make_settings(database_url, log_level="INFO"))
    user = User()
    try:
        with LogCapture() as logs:
            async with running.client() as client:
                r = await client.post(
                    user.url("/chat"), json={"message": MILK}, headers=user.headers
                )
        assert r.status_code == 200
        mine = [rec for rec in logs.records() if rec.get("request_id") == r.headers["x-request-id"]]
        # 1,665 calls asked for wrote 4,444 lines; now the cap bounds the calls and so the lines.
        assert 0 < len(mine) <= 5 * CAP, len(mine)
        capped = [rec for rec in mine if rec.get("operation") == "agent.tool_cap"]
        # The offline model reads the first 1,500 characters (D40): 250 of the 1,665 items,
        # of which the cap runs CAP; the rest are dropped and counted in one line.
        assert len(capped) == 1 and capped[0]["dropped"] == len(_read_items(MILK)) - CAP
    finally:
        await running.stop()


# --- MCP clients: a per-user limit on calls, and writes spend the task-write budget -----------


async def test_mcp_tool_calls_over_http_have_a_per_user_limit(database_url) -> None:
    live = await asyncio.to_thread(
        LiveServer(make_settings(database_url, rate_limit_mcp="5/day")).start
    )
    user, other = User(), User()
    try:
        async with http_client(live.mcp_url, user.token) as mcp:
            for _ in range(5):
                assert data(await mcp.call_tool("list_tasks")) == []
            refused = await mcp.call_tool("add_task", {"title": "sixth"})
            assert "Not done: too many tool calls in a short time" in error_text(refused)
            assert "too many tool calls" in error_text(await mcp.call_tool("list_tasks"))
        async with http_client(live.mcp_url, other.token) as mcp:
            assert data(await mcp.call_tool("add_task", {"title": "mine"}))["status"] == "created"
        async with httpx.AsyncClient(base_url=live.base) as rest:
            assert await _titles(rest, user) == []
            assert await _titles(rest, other) == ["mine"]
    finally:
        await asyncio.to_thread(live.stop)


async def test_mcp_writes_over_http_spend_the_task_write_budget(database_url) -> None:
    live = await asyncio.to_thread(
        LiveServer(make_settings(database_url, rate_limit_task_writes="3/day")).start
    )
    user = User()
    try:
        async with httpx.AsyncClient(base_url=live.base) as rest:
            for i in range(2):
                r = await rest.post(
                    user.url("/tasks"), json={"title": f"rest {i}"}, headers=user.headers
                )
                assert r.status_code == 201
            async with http_client(live.mcp_url, user.token) as mcp:
                added = data(await mcp.call_tool("add_task", {"title": "by mcp"}))
                refused = await mcp.call_tool("add_task", {"title": "one too many"})
                assert "Not done: too many changes" in error_text(refused)
                done = await mcp.call_tool("complete_task", {"task_id": added["task_id"]})
                assert "Not done: too many changes" in error_text(done)
                # Reading is not a write.
                assert len(data(await mcp.call_tool("list_tasks"))) == 3
            r = await rest.post(user.url("/tasks"), json={"title": "rest 3"}, headers=user.headers)
            assert r.status_code == 429
            tasks = (await rest.get(user.url("/tasks"), headers=user.headers)).json()
            assert [(t["title"], t["completed"]) for t in tasks] == [
                ("by mcp", False),
                ("rest 1", False),
                ("rest 0", False),
            ]
    finally:
        await asyncio.to_thread(live.stop)


async def test_mcp_over_stdio_has_the_same_limits(database_url, client, tmp_path: Path) -> None:
    user = User()
    async with stdio_client(
        database_url,
        user.token,
        tmp_path,
        RATE_LIMIT_MCP="4/day",
        RATE_LIMIT_TASK_WRITES="2/day",
    ) as mcp:
        for title in ("one", "two"):
            assert data(await mcp.call_tool("add_task", {"title": title}))["status"] == "created"
        refused = await mcp.call_tool("add_task", {"title": "three"})
        assert "Not done: too many changes" in error_text(refused)
        assert len(data(await mcp.call_tool("list_tasks"))) == 2
        refused = await mcp.call_tool("list_tasks")
        assert "Not done: too many tool calls" in error_text(refused)
    assert sorted(await _titles(client, user)) == ["one", "two"]


# --- what the chat budget pays for ------------------------------------------------------------


async def test_rejected_chat_requests_do_not_spend_the_chat_budget(database_url) -> None:
    running = await start_app(make_settings(database_url, rate_limit_chat="2/day"))
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
    running = await start_app(make_settings(database_url, rate_limit_chat="2/day"))
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
            # A new key refused by the budget leaves no record behind: its retry will run.
            late = f"key-{uuid.uuid4()}"
            r = await client.post(
                user.url("/chat"), json=CHAT, headers={**user.headers, "Idempotency-Key": late}
            )
            assert r.status_code == 429
            async with running.app.state.database.engine.connect() as conn:
                keys = metadata.tables["idempotency_keys"]
                rows = await conn.execute(sa.select(keys.c.key).where(keys.c.user_id == user.id))
                assert [row.key for row in rows] == [headers["Idempotency-Key"]]
            # Still answered from its record, budget or not.
            r = await client.post(user.url("/chat"), json=CHAT, headers=headers)
            assert r.status_code == 200 and r.text == answers[0].text
            stored = await snapshot(running.app, user.id)
            assert len(stored["messages"]) == 4  # two turns, each a question and an answer
    finally:
        await running.stop()


# --- task lists come in pages -----------------------------------------------------------------


async def _many_tasks(app: FastAPI, user: User, count: int) -> None:
    """Tasks written straight into the database: thousands through the API would be slow."""
    now = utcnow()
    rows = [
        {
            "user_id": user.id,
            "title": f"task {i}",
            "completed": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with app.state.database.engine.begin() as conn:
        await conn.execute(sa.insert(metadata.tables["tasks"]), rows)


async def test_task_lists_come_in_bounded_pages(app, client, user) -> None:
    await _many_tasks(app, user, 3450)
    r = await client.get(user.url("/tasks"), headers=user.headers)
    assert r.status_code == 200
    # 3,450 tasks came back whole (607 KB); now a page of 100, and where the rest is.
    assert len(r.json()) == 100 and len(r.content) < 30_000
    assert r.headers["x-next-cursor"] and 'rel="next"' in r.headers["link"]
    r = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
    assert len(r.json()) == 500
    for limit in (501, 3450, 10**9):
        r = await client.get(user.url(f"/tasks?limit={limit}"), headers=user.headers)
        assert r.status_code == 422


async def test_the_agents_task_list_is_bounded_and_says_there_are_more(app, client, user) -> None:
    await _many_tasks(app, user, 3450)
    body = await _chat(client, user, "show my tasks")
    (call,) = body["tool_calls"]
    assert call["name"] == "list_tasks"
    assert call["result"]["more"] is True and len(call["result"]["result"]) == 100
    assert call["result"]["result"][0]["title"] == "task 3449"
    assert body["response"].startswith("You have more than 100 tasks; here are the newest 100:")
    assert len(body["response"]) < 5_000
