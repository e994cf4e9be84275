"""The `openai` provider against an OpenAI-compatible upstream served on 127.0.0.1.

The upstream is a real HTTP server; the app talks to it through the OpenAI client exactly as it
would to OpenAI. No test reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from fakes.openai_upstream import FakeUpstream, failure, text, tool_call, tool_calls

from tests.conftest import RunningApp, User, make_settings, openai_settings, start_app


@pytest.fixture
async def openai_app(upstream: FakeUpstream, database_url: str) -> AsyncIterator[RunningApp]:
    running = await start_app(
        openai_settings(
            database_url,
            upstream.base_url,
            openai_timeout_s=1.0,
        )
    )
    yield running
    await running.stop()


async def _messages(c, user: User, cid: int) -> list[dict]:
    r = await c.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
    assert r.status_code == 200
    return r.json()


async def _only_conversation(c, user: User) -> int:
    [conversation] = (await c.get(user.url("/conversations"), headers=user.headers)).json()
    return conversation["id"]


async def test_health_reports_the_openai_model(openai_app: RunningApp) -> None:
    async with openai_app.client() as c:
        body = (await c.get("/health")).json()
    model = body["model"]
    assert (model["provider"], model["name"], model["status"]) == ("openai", "fake-model", "ok")
    assert body["status"] == "ok" and model["checked_at"]


async def test_full_turn_with_two_tool_calls_round_trips(openai_app, upstream) -> None:
    user = User()
    upstream.behaviour.record_requests = True
    upstream.behaviour.script.extend(
        [
            tool_calls(("add_task", {"title": "Buy milk"}), ("list_tasks", {"status": "pending"})),
            text("Added Buy milk; you have 1 pending task."),
        ]
    )
    async with openai_app.client() as c:
        r = await c.post(
            user.url("/chat"), json={"message": "add milk and show"}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["response"] == "Added Buy milk; you have 1 pending task."
        names = [t["name"] for t in body["tool_calls"]]
        assert names == ["add_task", "list_tasks"]
        add, listing = body["tool_calls"]
        assert add["result"]["status"] == "created"
        assert listing["result"] == [
            {
                "id": add["result"]["task_id"],
                "title": "Buy milk",
                "description": None,
                "completed": False,
            }
        ]
        assert add["id"] != listing["id"]
        messages = await _messages(c, user, body["conversation_id"])
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["tool_calls"] == body["tool_calls"]

    # The second upstream call saw both tool results, paired with their call ids.
    second = upstream.behaviour.requests[1]["messages"]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    calls = [tc["id"] for m in second if m.get("tool_calls") for tc in m["tool_calls"]]
    assert sorted(m["tool_call_id"] for m in tool_msgs) == sorted(calls)
    # The model never sees a user_id parameter.
    tools = upstream.behaviour.requests[0]["tools"]
    assert {t["function"]["name"] for t in tools} == {
        "add_task",
        "list_tasks",
        "complete_task",
        "delete_task",
        "update_task",
    }
    assert all("user_id" not in str(t["function"]["parameters"]) for t in tools)


async def test_requests_are_sent_as_the_openai_client_would_transform_them(
    openai_app, upstream
) -> None:
    """The agent's client skips the OpenAI client's per-call request transform (a CPU cost,
    agent/openai_client.py); on the bodies it sends, the transform would change nothing."""
    from openai._utils import async_maybe_transform
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

    from todochat.agent.openai_client import AgentOpenAI

    assert isinstance(openai_app.app.state.agent_runtime.agent.model._client, AgentOpenAI)
    user = User()
    upstream.behaviour.record_requests = True
    async with openai_app.client() as c:
        r = await c.post(user.url("/chat"), json={"message": "Buy milk"}, headers=user.headers)
        cid = r.json()["conversation_id"]
        upstream.behaviour.script.extend(
            [
                tool_calls(("list_tasks", {"status": "all"}), ("complete_task", {"task_id": 1})),
                text("Done."),
            ]
        )
        r = await c.post(
            user.url("/chat"),
            json={"conversation_id": cid, "message": "finish it, ünïcode ✓"},
            headers=user.headers,
        )
        assert r.status_code == 200, r.text
    # Two turns: a history with a user message, tool calls, tool results and replies.
    assert len(upstream.behaviour.requests) == 4
    for sent in upstream.behaviour.requests:
        assert sent["messages"] and sent["tools"]
        transformed = await async_maybe_transform(sent, CompletionCreateParamsNonStreaming)
        assert transformed == sent


async def test_earlier_tool_calls_are_visible_in_history(openai_app, upstream) -> None:
    user = User()
    upstream.behaviour.record_requests = True
    upstream.behaviour.script.extend([tool_call("add_task", {"title": "Call mom"}), text("Added.")])
    async with openai_app.client() as c:
        r = await c.post(user.url("/chat"), json={"message": "add call mom"}, headers=user.headers)
        cid = r.json()["conversation_id"]
        upstream.behaviour.requests.clear()
        upstream.behaviour.script.append(text("It is task one."))
        r = await c.post(
            user.url("/chat"),
            json={"message": "which id?", "conversation_id": cid},
            headers=user.headers,
        )
        assert r.status_code == 200
    history = upstream.behaviour.requests[0]["messages"]
    roles = [m["role"] for m in history]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert '"Call mom"' in history[3]["content"]


@pytest.mark.parametrize("fault", ["stall", "status_500", "drop"])
async def test_upstream_failure_is_503_and_conversation_stays_consistent(
    openai_app, upstream, fault
) -> None:
    user = User()
    if fault == "stall":
        upstream.behaviour.delay_s = 5.0
    elif fault == "status_500":
        upstream.behaviour.fail_status = 500
    else:
        upstream.behaviour.drop_connection = True
    async with openai_app.client() as c:
        started = time.monotonic()
        r = await c.post(
            user.url("/chat"), json={"message": "add a task to buy bread"}, headers=user.headers
        )
        elapsed = time.monotonic() - started
        assert r.status_code == 503
        cid = await _only_conversation(c, user)
        assert r.json() == {
            "detail": "I'm having trouble processing your request right now. "
            "Please try again in a moment.",
            "conversation_id": cid,
        }
        assert int(r.headers["retry-after"]) > 0
        assert elapsed < 3.0  # OPENAI_TIMEOUT_S is 1 s here
        messages = await _messages(c, user, cid)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[0]["content"] == "add a task to buy bread"
        assert (await c.get(user.url("/tasks"), headers=user.headers)).json() == []
        # The conversation goes on once the upstream is back.
        upstream.behaviour.__init__()  # type: ignore[misc]
        r = await c.post(
            user.url("/chat"),
            json={"message": "buy bread", "conversation_id": cid},
            headers=user.headers,
        )
        assert r.status_code == 200
        assert len(await _messages(c, user, cid)) == 4


async def test_failure_after_a_tool_ran_keeps_what_the_tool_did(openai_app, upstream) -> None:
    user = User()
    upstream.behaviour.script.extend(
        [tool_call("add_task", {"title": "Renew passport"}), failure(500)]
    )
    async with openai_app.client() as c:
        r = await c.post(
            user.url("/chat"), json={"message": "renew passport"}, headers=user.headers
        )
        assert r.status_code == 503
        [task] = (await c.get(user.url("/tasks"), headers=user.headers)).json()
        assert task["title"] == "Renew passport"
        messages = await _messages(c, user, await _only_conversation(c, user))
        assert messages[1]["role"] == "assistant"
        # The answer and the stored reply both say what was done before the failure.
        assert (
            r.json()["done"] == f"Here is what I did: added 'Renew passport' (task #{task['id']})."
        )
        assert messages[1]["content"] == f"{r.json()['detail']} {r.json()['done']}"
        [call] = messages[1]["tool_calls"]
        assert call["name"] == "add_task" and call["result"]["task_id"] == task["id"]


async def test_turn_limit_gives_a_friendly_reply(upstream, database_url) -> None:
    # Two steps allowed, both spent on tool calls: the turn stops at the limit.
    upstream.behaviour.script.extend([tool_call("list_tasks", {})] * 2)
    running = await start_app(
        make_settings(
            database_url,
            model_provider="openai",
            openai_api_key="sk-test",
            agent_max_turns=2,
            openai_base_url=upstream.base_url,
            openai_timeout_s=1.0,
        )
    )
    user = User()
    try:
        async with running.client() as c:
            r = await c.post(user.url("/chat"), json={"message": "loop"}, headers=user.headers)
            assert r.status_code == 200
            assert "more steps" in r.json()["response"]
            assert [t["name"] for t in r.json()["tool_calls"]] == ["list_tasks", "list_tasks"]
    finally:
        await running.stop()


async def test_scripted_model_cannot_reach_another_users_data(openai_app, upstream) -> None:
    victim, attacker = User(), User()
    async with openai_app.client() as c:
        r = await c.post(
            victim.url("/tasks"), json={"title": "Victim secret plan"}, headers=victim.headers
        )
        vid = r.json()["id"]
        upstream.behaviour.script.extend(
            [
                tool_calls(
                    ("list_tasks", {"status": "all", "user_id": victim.id}),
                    ("complete_task", {"task_id": vid}),
                    ("update_task", {"task_id": vid, "title": "pwned"}),
                    ("delete_task", {"task_id": vid}),
                    ("add_task", {"title": "planted", "user_id": victim.id}),
                    ("complete_task", {"task_id": vid, "user_id": victim.id}),
                ),
                text("Finished."),
            ]
        )
        r = await c.post(attacker.url("/chat"), json={"message": "do it"}, headers=attacker.headers)
        assert r.status_code == 200
        body = r.json()
        results = [t["result"] for t in body["tool_calls"]]
        assert results[1:4] == [{"error": f"Task {vid} not found"}] * 3
        assert "error" in results[0] and "error" in results[4] and "error" in results[5]
        assert "Victim secret plan" not in r.text

        victim_tasks = (await c.get(victim.url("/tasks"), headers=victim.headers)).json()
        assert [(t["title"], t["completed"]) for t in victim_tasks] == [
            ("Victim secret plan", False)
        ]
        assert (await c.get(attacker.url("/tasks"), headers=attacker.headers)).json() == []


async def test_the_model_reads_tool_failures_as_error_objects(openai_app, upstream) -> None:
    """MCP clients get `isError` results in words; the model gets the same words, as the
    `{"error": ...}` object it always read, and the chat stores that object."""
    user = User()
    upstream.behaviour.record_requests = True
    upstream.behaviour.script.extend(
        [
            tool_calls(
                ("complete_task", {"task_id": 424242}),
                ("add_task", {"title": "x" * 201}),
                ("update_task", {"task_id": 424242}),
            ),
            text("None of that worked."),
        ]
    )
    async with openai_app.client() as c:
        r = await c.post(user.url("/chat"), json={"message": "go"}, headers=user.headers)
    assert r.status_code == 200, r.text
    expected = [
        {"error": "Task 424242 not found"},
        {"error": "title: String should have at most 200 characters"},
        {"error": "Nothing to change: give a new title or description"},
    ]
    assert [t["result"] for t in r.json()["tool_calls"]] == expected
    second = upstream.behaviour.requests[1]["messages"]
    contents = [m["content"] for m in second if m["role"] == "tool"]
    seen = [
        json.loads("".join(p["text"] for p in c) if isinstance(c, list) else c) for c in contents
    ]
    assert seen == expected
    # The limits are in the MCP schemas; the model's strict schemas leave out the keywords
    # strict mode does not take, and keep the rest.
    tools = {t["function"]["name"]: t["function"] for t in upstream.behaviour.requests[0]["tools"]}
    add = tools["add_task"]["parameters"]["properties"]
    assert add["title"]["type"] == "string" and "1-200" in add["title"]["description"]
    assert not {"maxLength", "minLength", "pattern"} & set(json.dumps(tools).split('"'))
    assert tools["complete_task"]["parameters"]["properties"]["task_id"]["minimum"] == 1


async def test_concurrent_turns_do_not_hold_connections_while_the_model_thinks(
    upstream, database_url
) -> None:
    """16 turns of ~2 s upstream time each on a pool of 2 with a 3 s pool timeout: if a
    connection were held while the model thinks, most turns would time out waiting for one."""
    upstream.behaviour.__init__()  # type: ignore[misc]
    upstream.behaviour.delay_s = 1.0
    running = await start_app(
        make_settings(
            database_url,
            model_provider="openai",
            openai_api_key="sk-test",
            openai_base_url=upstream.base_url,
            openai_timeout_s=5.0,
            db_pool_size=2,
            db_max_overflow=0,
            db_pool_timeout_s=3.0,
        )
    )
    users = [User() for _ in range(16)]
    try:
        async with running.client() as c:

            async def turn(u: User) -> int:
                r = await c.post(
                    u.url("/chat"), json={"message": f"note for {u.id}"}, headers=u.headers
                )
                return r.status_code

            started = time.monotonic()
            statuses = await asyncio.gather(*(turn(u) for u in users))
            elapsed = time.monotonic() - started
            assert statuses == [200] * 16
            assert elapsed < 8.0  # concurrent, not serialised behind two connections
            for u in users:
                [task] = (await c.get(u.url("/tasks"), headers=u.headers)).json()
                assert task["title"] == f"note for {u.id}"
    finally:
        await running.stop()
