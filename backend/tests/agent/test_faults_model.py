"""The model upstream failing for real: an OpenAI-compatible server on 127.0.0.1 that stalls,
drops the connection, answers 500, or dies half-way through a turn. The client always gets the
contract's 503 with Retry-After, quickly, and the conversation stays consistent."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from fakes.openai_upstream import FakeUpstream, drop, fail, stall, text, tool_call

from tests.conftest import RunningApp, User, make_settings, openai_settings, start_app
from tests.faults import LogCapture

API_KEY = "sk-test-upstream-key-must-never-be-logged"
MODEL_DOWN = "I'm having trouble processing your request right now. Please try again in a moment."


@pytest.fixture(scope="module")
async def model_app(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[RunningApp]:
    settings = openai_settings(
        database_url,
        fake_upstream.base_url,
        openai_api_key=API_KEY,
        openai_timeout_s=1.0,
        chat_turn_timeout_s=3.0,
    )
    running = await start_app(settings)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(autouse=True)
def _healthy_upstream(upstream: FakeUpstream) -> None:
    """Every test starts with a healthy fake model (the shared fixture resets it)."""


async def _conversation(c, user: User, conversation_id: int) -> list[dict]:
    r = await c.get(user.url(f"/conversations/{conversation_id}/messages"), headers=user.headers)
    return r.json()


async def _only_conversation(c, user: User) -> int:
    r = await c.get(user.url("/conversations"), headers=user.headers)
    conversations = r.json()
    assert len(conversations) == 1
    return conversations[0]["id"]


@pytest.mark.parametrize(
    "fault",
    ["stall", "drop", "status_500", "status_429"],
)
async def test_upstream_failure_is_a_quick_503_and_the_conversation_stays_consistent(
    model_app, upstream, fault
) -> None:
    entry = {"stall": stall(5), "drop": drop(), "status_500": fail(500), "status_429": fail(429)}
    upstream.behaviour.script.append(entry[fault])
    user = User()
    with LogCapture() as logs:
        async with model_app.client() as c:
            started = time.monotonic()
            r = await c.post(
                user.url("/chat"), json={"message": "add buy bread"}, headers=user.headers
            )
            elapsed = time.monotonic() - started
            assert r.status_code == 503
            conversation_id = await _only_conversation(c, user)
            assert r.json() == {"detail": MODEL_DOWN, "conversation_id": conversation_id}
            assert int(r.headers["Retry-After"]) > 0
            assert elapsed < 4  # the per-call timeout (1 s) cut the 5 s stall short
            messages = await _conversation(c, user, conversation_id)
            assert [(m["role"], m["content"]) for m in messages] == [
                ("user", "add buy bread"),
                ("assistant", MODEL_DOWN),
            ]
            assert (await c.get(user.url("/tasks"), headers=user.headers)).json() == []
            metrics = (await c.get("/metrics")).text
    assert "todochat_model_failures_total{reason=" in metrics
    assert 'todochat_chat_turns_total{outcome="model_error"}' in metrics
    failure = next(r for r in logs.records() if r["message"] == "model upstream failed")
    assert failure["user_id"] == user.id and failure["conversation_id"] and failure["request_id"]
    assert failure["error_type"]
    assert API_KEY not in logs.text and user.token not in logs.text


async def test_a_turn_cut_half_way_keeps_what_was_done_and_a_retry_finishes_it(
    model_app, upstream
) -> None:
    # The model asks for add_task, the tool runs, then the upstream fails on the next step.
    upstream.behaviour.script.extend([tool_call("add_task", {"title": "Buy bread"}), fail(500)])
    user = User()
    headers = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"message": "please add bread"}
    async with model_app.client() as c:
        r = await c.post(user.url("/chat"), json=body, headers=headers)
        tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
        assert [t["title"] for t in tasks] == ["Buy bread"]
        conversation_id = await _only_conversation(c, user)
        done = f"Here is what I did: added 'Buy bread' (task #{tasks[0]['id']})."
        failed_reply = f"{MODEL_DOWN} {done}"
        assert r.status_code == 503
        # The contract's sentence, where to go on, and what the tool did.
        assert r.json() == {"detail": MODEL_DOWN, "conversation_id": conversation_id, "done": done}
        messages = await _conversation(c, user, conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        (partial,) = messages[1]["tool_calls"]
        assert partial["name"] == "add_task"
        assert partial["result"] == {
            "task_id": tasks[0]["id"],
            "status": "created",
            "title": "Buy bread",
        }

        # The client retries with the same key once the upstream is back: the turn resumes,
        # the same tool call is replayed instead of adding a second loaf.
        upstream.behaviour.script.extend(
            [tool_call("add_task", {"title": "Buy bread"}), text("Added bread to your list.")]
        )
        r = await c.post(user.url("/chat"), json=body, headers=headers)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["conversation_id"] == conversation_id
        assert answer["response"] == "Added bread to your list."
        assert answer["tool_calls"][0]["result"]["task_id"] == tasks[0]["id"]
        tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
        assert [t["title"] for t in tasks] == ["Buy bread"]
        messages = await _conversation(c, user, conversation_id)
        assert [(m["role"], m["content"]) for m in messages] == [
            ("user", "please add bread"),
            ("assistant", failed_reply),
            ("assistant", "Added bread to your list."),
        ]
        # And now the key replays the finished turn.
        again = await c.post(user.url("/chat"), json=body, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true" and again.json() == answer


async def test_the_whole_turn_has_a_ceiling(database_url, upstream) -> None:
    # Each model call stays under its own timeout (0.7 s < 1 s); the two of them do not fit in
    # the turn's ceiling (1.2 s). The first call asks for add_task, which runs and is kept.
    upstream.behaviour.script.clear()
    upstream.behaviour.script.extend([stall(0.7), stall(0.7)])
    settings = make_settings(
        database_url,
        model_provider="openai",
        openai_api_key=API_KEY,
        openai_base_url=upstream.base_url,
        openai_timeout_s=1.0,
        chat_turn_timeout_s=1.2,
    )
    running = await start_app(settings)
    user = User()
    try:
        async with running.client() as c:
            started = time.monotonic()
            r = await c.post(
                user.url("/chat"), json={"message": "add water plants"}, headers=user.headers
            )
            assert r.status_code == 503 and r.json()["detail"] == MODEL_DOWN
            # Without the ceiling this turn would succeed (every call is under its timeout).
            assert time.monotonic() - started >= 1.2
            tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
            assert [t["title"] for t in tasks] == ["add water plants"]
            messages = await _conversation(c, user, await _only_conversation(c, user))
            assert messages[-1]["content"] == f"{r.json()['detail']} {r.json()['done']}"
            assert "added 'add water plants'" in r.json()["done"]
            assert messages[-1]["tool_calls"][0]["result"]["task_id"] == tasks[0]["id"]
    finally:
        upstream.behaviour.script.clear()
        await running.stop()
