"""The chat endpoint and conversation routes on the offline model, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import User, make_settings, start_app
from todochat.agent.items import history_as_input
from todochat.conversations.schemas import MessageRead, ToolCall

_NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def _chat(client, user: User, message: str, conversation_id: int | None = None):
    body: dict = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    return await client.post(user.url("/chat"), json=body, headers=user.headers)


async def _conversations(client, user: User) -> list[dict]:
    r = await client.get(user.url("/conversations"), headers=user.headers)
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ("", "Message cannot be empty"),
        ("   \n\t ", "Message cannot be empty"),
        ("x" * 10_001, "Message too long (max 10000 characters)"),
    ],
)
async def test_invalid_message_is_422_and_stores_nothing(client, user, message, detail) -> None:
    r = await _chat(client, user, message)
    assert r.status_code == 422
    assert r.json()["detail"] == detail
    assert await _conversations(client, user) == []


async def test_message_of_exactly_10000_characters_after_trimming_is_accepted(client, user) -> None:
    r = await _chat(client, user, "  " + "x" * 10_000 + "  ")
    assert r.status_code == 200


async def test_unknown_fields_and_bad_conversation_ids_are_422(client, user) -> None:
    for body in (
        {"message": "hi", "user_id": "x"},
        {"message": "hi", "conversation_id": 0},
        {"message": "hi", "conversation_id": "abc"},
        {"conversation_id": 1},
    ):
        r = await client.post(user.url("/chat"), json=body, headers=user.headers)
        assert r.status_code == 422, body
    assert await _conversations(client, user) == []


async def test_unknown_conversation_is_404(client, user) -> None:
    r = await _chat(client, user, "hello", conversation_id=2_000_000_000)
    assert r.status_code == 404
    assert r.json() == {"detail": "Conversation 2000000000 not found"}


async def test_other_users_conversation_is_404_and_untouched(client, user, other_user) -> None:
    r = await _chat(client, user, "Add a task to buy bread")
    cid = r.json()["conversation_id"]
    r = await _chat(client, other_user, "delete it", conversation_id=cid)
    assert r.status_code == 404
    r = await client.get(
        other_user.url(f"/conversations/{cid}/messages"), headers=other_user.headers
    )
    assert r.status_code == 404
    r = await client.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
    assert [m["role"] for m in r.json()] == ["user", "assistant"]
    tasks = (await client.get(user.url("/tasks"), headers=user.headers)).json()
    assert [t["title"] for t in tasks] == ["Buy bread"]


async def test_answer_carries_tool_calls_paired_with_results(client, user) -> None:
    r = await _chat(client, user, "Add a task to buy groceries")
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["conversation_id"], int)
    assert "Buy groceries" in body["response"]
    [call] = body["tool_calls"]
    assert call["name"] == "add_task"
    assert call["arguments"] == {"title": "Buy groceries"}
    assert call["id"]
    task = (await client.get(user.url("/tasks"), headers=user.headers)).json()[0]
    assert call["result"] == {"task_id": task["id"], "status": "created", "title": "Buy groceries"}


async def test_multi_turn_it_refers_to_the_last_task(client, user) -> None:
    r = await _chat(client, user, "add buy bread")
    cid = r.json()["conversation_id"]
    r = await _chat(client, user, "mark it as done", conversation_id=cid)
    assert r.status_code == 200
    assert [c["name"] for c in r.json()["tool_calls"]] == ["complete_task"]
    [task] = (await client.get(user.url("/tasks"), headers=user.headers)).json()
    assert task["title"] == "Buy bread" and task["completed"] is True


async def test_conversation_history_routes(client, user) -> None:
    first = (await _chat(client, user, "Add a task to call mom")).json()["conversation_id"]
    second = (await _chat(client, user, "What's pending?")).json()["conversation_id"]
    assert first != second
    await _chat(client, user, "show my tasks", conversation_id=first)
    ids = [c["id"] for c in await _conversations(client, user)]
    assert ids == [first, second]  # most recently active first

    r = await client.get(user.url(f"/conversations/{first}/messages"), headers=user.headers)
    messages = r.json()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Add a task to call mom"
    assert messages[0]["tool_calls"] is None
    assert messages[1]["tool_calls"][0]["name"] == "add_task"
    assert messages[3]["tool_calls"][0]["name"] == "list_tasks"
    assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)

    r = await client.get(
        user.url(f"/conversations/{first}/messages?after={messages[1]['id']}&limit=1"),
        headers=user.headers,
    )
    assert [m["id"] for m in r.json()] == [messages[2]["id"]]


async def test_conversation_continues_after_a_restart(database_url: str) -> None:
    user = User()
    first = await start_app(make_settings(database_url))
    try:
        async with first.client() as c:
            r = await _chat(c, user, "Add a task to book flights")
            cid = r.json()["conversation_id"]
    finally:
        await first.stop()

    second = await start_app(make_settings(database_url))
    try:
        async with second.client() as c:
            r = await _chat(c, user, "Actually, rename it to Book flights to Lisbon", cid)
            assert r.status_code == 200
            assert [t["name"] for t in r.json()["tool_calls"]] == ["update_task"]
            tasks = (await c.get(user.url("/tasks"), headers=user.headers)).json()
            assert [t["title"] for t in tasks] == ["Book flights to Lisbon"]
            r = await c.get(user.url(f"/conversations/{cid}/messages"), headers=user.headers)
            assert len(r.json()) == 4
    finally:
        await second.stop()


async def test_greeting_changes_nothing_and_explains(client, user) -> None:
    r = await _chat(client, user, "Hello! What can you do?")
    assert r.status_code == 200
    assert r.json()["tool_calls"] == []
    assert "task" in r.json()["response"].lower()
    assert (await client.get(user.url("/tasks"), headers=user.headers)).json() == []


async def test_several_tasks_in_one_request(client, user) -> None:
    ids = []
    for title in ("Pay rent", "Water plants", "Call mom"):
        r = await client.post(user.url("/tasks"), json={"title": title}, headers=user.headers)
        ids.append(r.json()["id"])
    r = await _chat(client, user, f"tasks {ids[0]} and {ids[1]} are done")
    assert [c["name"] for c in r.json()["tool_calls"]] == ["complete_task", "complete_task"]
    tasks = {
        t["id"]: t for t in (await client.get(user.url("/tasks"), headers=user.headers)).json()
    }
    assert [tasks[i]["completed"] for i in ids] == [True, True, False]


async def test_offline_model_streams_through_the_same_runner_and_tools(app, client, user) -> None:
    """The streaming method goes through the real Runner and the real MCP tools too."""
    from agents import Runner
    from openai.types.responses import ResponseTextDeltaEvent

    from todochat.agent.turn import TurnContext

    runtime = app.state.agent_runtime
    result = Runner.run_streamed(
        runtime.agent,
        [{"role": "user", "content": "remind me to water the plants"}],
        context=TurnContext(user_id=user.id),
        run_config=runtime.run_config,
    )
    deltas = []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas.append(event.data.delta)
    assert "Water the plants" in result.final_output
    assert "".join(deltas).strip() == result.final_output.strip()
    [task] = (await client.get(user.url("/tasks"), headers=user.headers)).json()
    assert task["title"] == "Water the plants"


async def test_every_model_step_sees_the_history_as_the_runner_would_send_it(app, user) -> None:
    """The stored history reaches the model through the input filter, not as the Runner's input
    (agent/runner.py `with_history`): each step must get the list the Runner would have built."""
    import copy
    from dataclasses import replace

    from agents import Runner

    from todochat.agent.offline import OfflineModel
    from todochat.agent.turn import TurnContext

    class Recording(OfflineModel):
        def __init__(self) -> None:
            super().__init__()
            self.inputs: list = []

        async def get_response(self, system_instructions, input, *args, **kwargs):
            self.inputs.append(copy.deepcopy(input))
            return await super().get_response(system_instructions, input, *args, **kwargs)

    call = {"id": "call_1", "name": "add_task", "arguments": {"title": "Buy milk"}}
    messages = [
        MessageRead(id=1, role="user", content="add buy milk", tool_calls=None, created_at=_NOW),
        MessageRead(
            id=2,
            role="assistant",
            content="Done! I've added 'Buy milk' (task #7) to your list.",
            tool_calls=[
                ToolCall(**call, result={"task_id": 7, "status": "created", "title": "Buy milk"})
            ],
            created_at=_NOW,
        ),
    ]
    history = history_as_input(messages)
    stored = copy.deepcopy(history)
    message = "what's pending?"
    runtime = app.state.agent_runtime
    unfiltered, filtered = Recording(), Recording()
    baseline = await Runner.run(
        runtime.agent.clone(model=unfiltered),
        [*history, {"role": "user", "content": message}],
        context=TurnContext(user_id=user.id),
        run_config=replace(runtime.run_config, call_model_input_filter=None),
    )
    agent = runtime.agent
    runtime.agent = agent.clone(model=filtered)
    try:
        result = await runtime.run_turn(user_id=user.id, history=messages, message=message)
    finally:
        runtime.agent = agent

    def without_fresh_ids(inputs: list) -> list:
        # Ids the model makes up in this turn are random; the history's are kept.
        return [
            [
                it
                if i < len(history)
                else {k: v for k, v in it.items() if k not in ("id", "call_id")}
                for i, it in enumerate(step)
            ]
            for step in inputs
        ]

    assert len(filtered.inputs) == 2  # list_tasks, then the reply
    assert without_fresh_ids(filtered.inputs) == without_fresh_ids(unfiltered.inputs)
    assert filtered.inputs[0][: len(history)] == stored
    assert result.reply == baseline.final_output
    # Every step sees the stored history as it was: the models only read their input.
    assert filtered.inputs[1][: len(history)] == stored
