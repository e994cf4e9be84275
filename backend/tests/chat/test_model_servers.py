"""Real model servers and imperfect models (issue 14), on the JSON turn and the streamed turn.

The fake upstream (fakes/openai_upstream.py) reproduces each behaviour over real HTTP: a server
that rejects `null` contents and part lists, one that needs `tool_choice`, a model that calls a
tool that does not exist, writes arguments that are not JSON or says nothing, and upstream
answers 401/404/429/500 or no listener at all. The app runs behind a real uvicorn; the streamed
turn is read by the AI SDK's own client code (tests/chat/ai_sdk/read_stream.mjs).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fakes.openai_upstream import (
    FakeUpstream,
    bad_arguments,
    empty,
    fail,
    text,
    tool_call,
)

from tests.chat.conftest import Reader
from tests.conftest import User, openai_settings, served
from tests.faults import LogCapture
from todochat.agent.items import BAD_ARGUMENTS_MESSAGE
from todochat.config import Settings
from todochat.errors import ModelMisconfigured, ModelUnavailable
from todochat.logs import configure_logging

API_KEY = "sk-test-model-servers-key-never-logged"
DOORS = ["json", "stream"]


def _settings(database_url: str, base_url: str, **overrides: Any) -> Settings:
    return openai_settings(
        database_url,
        base_url,
        openai_api_key=API_KEY,
        openai_timeout_s=2.0,
        chat_turn_timeout_s=5.0,
        **overrides,
    )


@pytest.fixture(scope="module")
async def app_url(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[str]:
    """The app with the default settings: tool_choice "auto", contents as the SDK writes them."""
    async with served(_settings(database_url, fake_upstream.base_url)) as url:
        yield url


@pytest.fixture(scope="module")
async def strings_url(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[str]:
    """The app with OPENAI_STRING_CONTENT=true."""
    settings = _settings(database_url, fake_upstream.base_url, openai_string_content=True)
    async with served(settings) as url:
        yield url


class Turn:
    """One turn through either door, in the JSON turn's terms."""

    def __init__(self, door: str, reader: Reader | None) -> None:
        self.door = door
        self.reader = reader

    async def __call__(
        self,
        base: str,
        user: User,
        message: str,
        *,
        conversation_id: int | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """{status, conversation_id, response | detail, tool_calls, retry_after}"""
        if self.door == "json":
            headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
            body: dict[str, Any] = {"message": message}
            if conversation_id is not None:
                body["conversation_id"] = conversation_id
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                r = await c.post(f"/api/{user.id}/chat", json=body, headers=headers)
            answer = r.json()
            return {
                "status": r.status_code,
                "retry_after": r.headers.get("retry-after"),
                "conversation_id": answer.get("conversation_id"),
                "response": answer.get("response"),
                # All the error says: the contract's sentence, then what the tools did.
                "detail": " ".join(t for t in (answer.get("detail"), answer.get("done")) if t)
                or None,
                "sentence": answer.get("detail"),
                "done": answer.get("done"),
                "tool_calls": answer.get("tool_calls", []),
            }
        assert self.reader is not None
        result = await self.reader(
            api=f"{base}/api/{user.id}/chat/stream",
            token=user.token,
            message=message,
            conversation_id=conversation_id,
            idempotency_key=key,
        )
        streamed = result["message"]
        parts = streamed["parts"] if streamed else []
        error = result["error"]
        return {
            # The stream began (200); a failure after that is its `error` chunk.
            "status": 200 if error is None else "error",
            "retry_after": None,
            "conversation_id": streamed["metadata"]["conversationId"] if streamed else None,
            "response": "".join(p["text"] for p in parts if p["type"] == "text")
            if error is None
            else None,
            "detail": error,
            "tool_calls": [
                {
                    "id": p["toolCallId"],
                    "name": p["type"].removeprefix("tool-"),
                    "arguments": p["input"],
                    "result": p["output"],
                }
                for p in parts
                if p["type"].startswith("tool-") and p["state"] == "output-available"
            ],
        }


@pytest.fixture(params=DOORS)
def turn(request: pytest.FixtureRequest) -> Turn:
    if request.param == "json":
        return Turn("json", None)
    reader: Reader = request.getfixturevalue("ai_sdk_reader")
    return Turn("stream", reader)


async def _messages(base: str, user: User, conversation_id: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get(
            f"/api/{user.id}/conversations/{conversation_id}/messages", headers=user.headers
        )
    assert r.status_code == 200
    messages: list[dict[str, Any]] = r.json()
    return messages


async def _tasks(base: str, user: User) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get(f"/api/{user.id}/tasks", headers=user.headers)
    tasks: list[dict[str, Any]] = r.json()
    return tasks


def _capture() -> LogCapture:
    """The app's log lines; its handler (which LogCapture copies) exists before any app does."""
    configure_logging("WARNING")
    return LogCapture()


def _failed(outcome: dict[str, Any], door: str, status: int) -> None:
    """The turn failed with `status` (JSON) or an error chunk (stream), naming its conversation."""
    if door == "json":
        assert outcome["status"] == status, outcome
    else:
        assert outcome["status"] == "error", outcome
    assert outcome["conversation_id"], outcome


# --- servers that differ ---------------------------------------------------------------------


async def test_a_server_that_rejects_null_and_part_lists_works_with_string_content(
    app_url: str, strings_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    upstream.behaviour.strict_strings = True
    # Without the switch, the step after a tool call is refused ("Input should be a valid
    # string"): a 5xx, so a temporary failure, and what the tool did is told and kept.
    user = User()
    upstream.behaviour.script.append(tool_call("add_task", {"title": "Buy milk"}))
    outcome = await turn(app_url, user, "add buy milk")
    _failed(outcome, turn.door, 503)
    assert outcome["detail"].startswith(ModelUnavailable.detail)
    assert "added 'Buy milk'" in outcome["detail"]
    if turn.door == "json":
        # The contract's 503 body: exactly its sentence in `detail`.
        assert outcome["sentence"] == ModelUnavailable.detail

    # With it, the same server takes every step, and a later turn that resends the history.
    upstream.behaviour.requests.clear()
    user = User()
    upstream.behaviour.script.extend(
        [
            tool_call("complete_task", {"task_id": 999_999}),  # an error output: a part list
            tool_call("add_task", {"title": "Buy bread"}),
            text("Added Buy bread."),
        ]
    )
    outcome = await turn(strings_url, user, "add buy bread")
    assert outcome["status"] == 200 and outcome["response"] == "Added Buy bread.", outcome
    upstream.behaviour.script.append(text("You have one task."))
    again = await turn(
        strings_url, user, "what is left?", conversation_id=outcome["conversation_id"]
    )
    assert again["status"] == 200 and again["response"] == "You have one task."
    sent = [m for r in upstream.behaviour.requests for m in r["messages"]]
    assert {m["role"] for m in sent} >= {"assistant", "tool"}
    assert all(isinstance(m["content"], str) for m in sent)


@pytest.mark.parametrize("tool_choice", ["auto", "unset"])
async def test_tool_choice_is_sent_as_set(
    database_url: str, upstream: FakeUpstream, tool_choice: str
) -> None:
    """A server that reads a missing tool_choice as "none" calls tools only when it is sent."""
    upstream.behaviour.needs_tool_choice = True
    settings = _settings(database_url, upstream.base_url, openai_tool_choice=tool_choice)
    user = User()
    async with served(settings) as base:
        outcome = await Turn("json", None)(base, user, "add water the plants")
        tasks = await _tasks(base, user)
    assert outcome["status"] == 200
    first = upstream.behaviour.requests[0]
    if tool_choice == "auto":
        assert first["tool_choice"] == "auto"
        assert [t["title"] for t in tasks] == ["add water the plants"]
    else:
        assert "tool_choice" not in first
        assert tasks == [] and outcome["tool_calls"] == []


# --- imperfect models ------------------------------------------------------------------------


async def test_an_unknown_tool_goes_back_to_the_model_which_corrects_itself(
    app_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    upstream.behaviour.script.extend(
        [
            tool_call("add_tasks", {"title": "Pay rent"}),
            tool_call("add_task", {"title": "Pay rent"}),
            text("Added Pay rent."),
        ]
    )
    user = User()
    outcome = await turn(app_url, user, "add pay rent")
    assert outcome["status"] == 200 and outcome["response"] == "Added Pay rent."
    wrong, right = outcome["tool_calls"]
    assert wrong["name"] == "add_tasks" and wrong["arguments"] == {"title": "Pay rent"}
    assert wrong["result"]["error"].startswith("Not done: there is no tool named 'add_tasks'")
    assert right["result"]["status"] == "created"
    # The model was told in this product's words, with the tools it has.
    told = [m for m in upstream.behaviour.requests[1]["messages"] if m["role"] == "tool"]
    assert "add_task, list_tasks" in str(told[0]["content"])
    assert [t["title"] for t in await _tasks(app_url, user)] == ["Pay rent"]
    stored = await _messages(app_url, user, outcome["conversation_id"])
    assert [c["name"] for c in stored[1]["tool_calls"]] == ["add_tasks", "add_task"]


async def test_arguments_that_are_not_json_are_a_tool_error_and_kept_as_written(
    app_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    raw = '{"title": "Call mom"'  # cut short
    upstream.behaviour.script.extend(
        [bad_arguments("add_task", raw), empty()]  # and then the model says nothing
    )
    user = User()
    outcome = await turn(app_url, user, "add call mom")
    assert outcome["status"] == 200
    [call] = outcome["tool_calls"]
    assert call["arguments"] == {}
    assert call["result"] == {"error": BAD_ARGUMENTS_MESSAGE, "raw_arguments": raw}
    told = [m for m in upstream.behaviour.requests[1]["messages"] if m["role"] == "tool"]
    assert str(told[0]["content"]).find("Not done: the arguments were not a JSON object") >= 0
    # Nothing was done, and the reply does not pretend otherwise.
    assert await _tasks(app_url, user) == []
    assert "Done" not in outcome["response"]
    assert outcome["response"].startswith("These did not work: add add_task")
    stored = await _messages(app_url, user, outcome["conversation_id"])
    assert stored[1]["tool_calls"][0]["result"]["raw_arguments"] == raw


async def test_wrong_argument_types_come_back_in_this_products_words(
    app_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    upstream.behaviour.script.extend(
        [tool_call("complete_task", {"task_id": "the first one"}), text("Sorry.")]
    )
    user = User()
    outcome = await turn(app_url, user, "complete the first one")
    [call] = outcome["tool_calls"]
    error = call["result"]["error"]
    assert error == "task_id: Input should be a valid integer"
    told = str(upstream.behaviour.requests[1]["messages"])
    for leak in ("Arguments", "pydantic", "http", "errors.pydantic.dev"):
        assert leak not in error and leak not in told


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([empty()], "I did not change anything. Could you say what you would like"),
        ([tool_call("add_task", {"title": "Buy eggs"}), empty()], "Here is what I did: added"),
        (
            [tool_call("complete_task", {"task_id": 999_999}), empty()],
            "These did not work: complete task #999999: Task 999999 not found.",
        ),
        ([tool_call("list_tasks", {}), empty()], "I looked at your tasks but changed nothing"),
    ],
)
async def test_an_empty_answer_gets_an_honest_reply(
    app_url: str, upstream: FakeUpstream, turn: Turn, script: list[Any], expected: str
) -> None:
    upstream.behaviour.script.extend(script)
    user = User()
    outcome = await turn(app_url, user, "hm")
    assert outcome["status"] == 200
    assert outcome["response"].startswith(expected), outcome["response"]
    assert "Done" not in outcome["response"]
    stored = await _messages(app_url, user, outcome["conversation_id"])
    assert stored[-1]["content"] == outcome["response"]


# --- failures told apart ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 400])
async def test_a_configuration_error_is_a_502_logged_once_with_its_cause(
    app_url: str, upstream: FakeUpstream, turn: Turn, status: int
) -> None:
    echo = f'{{"error": {{"message": "Incorrect API key provided: {API_KEY}", "code": {status}}}}}'
    upstream.behaviour.script.append(fail(status, body=echo))
    user = User()
    with _capture() as logs:
        outcome = await turn(app_url, user, "add buy milk")
    _failed(outcome, turn.door, 502)
    assert outcome["detail"] == ModelMisconfigured.detail
    assert outcome["retry_after"] is None
    [line] = [r for r in logs.records() if r["message"] == "model upstream failed"]
    assert line["level"] == "ERROR" and line["outcome"] == "misconfigured"
    assert line["upstream_status"] == status
    assert line["upstream_path"] == "/v1/chat/completions"
    assert "Incorrect API key provided" in line["upstream_body"]
    assert line["conversation_id"] == outcome["conversation_id"]
    assert API_KEY not in logs.text and user.token not in logs.text
    stored = await _messages(app_url, user, outcome["conversation_id"])
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "add buy milk"),
        ("assistant", ModelMisconfigured.detail),
    ]


@pytest.mark.parametrize(
    ("entry", "retry_after", "kind"),
    [
        (fail(429, retry_after="7"), "7", "rate_limited"),
        (fail(429), "10", "rate_limited"),
        (fail(500), "10", "overloaded"),
        (fail(503, retry_after="30"), "10", "overloaded"),
    ],
)
async def test_temporary_upstream_failures_are_503_with_retry_after(
    app_url: str, upstream: FakeUpstream, turn: Turn, entry: Any, retry_after: str, kind: str
) -> None:
    upstream.behaviour.script.append(entry)
    user = User()
    with _capture() as logs:
        outcome = await turn(app_url, user, "add buy milk")
    _failed(outcome, turn.door, 503)
    assert outcome["detail"] == ModelUnavailable.detail
    if turn.door == "json":
        assert outcome["retry_after"] == retry_after
    [line] = [r for r in logs.records() if r["message"] == "model upstream failed"]
    assert line["outcome"] == kind and line["level"] == "WARNING"


async def test_a_tools_effect_behind_a_configuration_error_is_told_and_kept(
    app_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    upstream.behaviour.script.extend([tool_call("add_task", {"title": "Renew visa"}), fail(401)])
    user = User()
    outcome = await turn(app_url, user, "renew visa")
    _failed(outcome, turn.door, 502)
    [task] = await _tasks(app_url, user)
    told = f"Here is what I did: added 'Renew visa' (task #{task['id']})."
    assert outcome["detail"] == f"{ModelMisconfigured.detail} {told}"
    if turn.door == "json":
        # `detail` is the fixed sentence; what the tools did is `done`, beside it.
        assert (outcome["sentence"], outcome["done"]) == (ModelMisconfigured.detail, told)
    stored = await _messages(app_url, user, outcome["conversation_id"])
    assert stored[1]["content"] == outcome["detail"]
    assert stored[1]["tool_calls"][0]["result"]["task_id"] == task["id"]


async def test_a_keyed_repeat_after_a_configuration_error_does_not_pile_up_replies(
    app_url: str, upstream: FakeUpstream, turn: Turn
) -> None:
    upstream.behaviour.fail_status = 404
    user, key = User(), uuid.uuid4().hex
    outcomes = [await turn(app_url, user, "add buy milk", key=key) for _ in range(3)]
    for outcome in outcomes:
        _failed(outcome, turn.door, 502)
    cid = outcomes[0]["conversation_id"]
    assert {o["conversation_id"] for o in outcomes} == {cid}
    stored = await _messages(app_url, user, cid)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "add buy milk"),
        ("assistant", ModelMisconfigured.detail),
    ]
    # Once the service is fixed, the same key finishes the turn.
    upstream.behaviour.fail_status = None
    done = await turn(app_url, user, "add buy milk", key=key)
    assert done["status"] == 200 and done["conversation_id"] == cid
    assert len(await _messages(app_url, user, cid)) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("door", DOORS)
async def test_nothing_listening_is_unreachable_503_and_health_says_so(
    database_url: str, request: pytest.FixtureRequest, door: str
) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    reader = request.getfixturevalue("ai_sdk_reader") if door == "stream" else None
    user = User()
    with _capture() as logs:
        async with served(_settings(database_url, base_url)) as base:
            outcome = await Turn(door, reader)(base, user, "add buy milk")
            async with httpx.AsyncClient(base_url=base) as c:
                health = await c.get("/health")
    _failed(outcome, door, 503)
    [line] = [r for r in logs.records() if r["message"] == "model upstream failed"]
    assert (line["outcome"], line["error_type"]) == ("unreachable", "ConnectionRefusedError")
    # Readiness is about this service; the upstream's state is reported, not failed on.
    assert health.status_code == 200
    assert health.json()["model"]["status"] == "unreachable"


@pytest.mark.parametrize("door", DOORS)
async def test_the_responses_api_against_a_chat_completions_server_is_a_502(
    database_url: str, upstream: FakeUpstream, request: pytest.FixtureRequest, door: str
) -> None:
    reader = request.getfixturevalue("ai_sdk_reader") if door == "stream" else None
    settings = _settings(database_url, upstream.base_url, openai_api="responses")
    user = User()
    with _capture() as logs:
        async with served(settings) as base:
            outcome = await Turn(door, reader)(base, user, "add buy milk")
            async with httpx.AsyncClient(base_url=base) as c:
                model = (await c.get("/health")).json()["model"]
    _failed(outcome, door, 502)
    [line] = [r for r in logs.records() if r["message"] == "model upstream failed"]
    assert (line["upstream_status"], line["upstream_path"]) == (404, "/v1/responses")
    assert model["status"] == "misconfigured"
    assert model["detail"] == "misconfigured: HTTP 404 on /v1/responses"


# --- start-up check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "models_status", "status", "logged"),
    [
        (["fake-model"], None, "ok", "model upstream check: model fake-model is served"),
        (["other-model"], None, "model_missing", "model fake-model is not listed"),
        (["fake-model"], 401, "misconfigured", "model upstream check failed (misconfigured)"),
    ],
)
async def test_start_up_checks_the_model_once_and_health_reports_it(
    database_url: str,
    upstream: FakeUpstream,
    models: list[str],
    models_status: int | None,
    status: str,
    logged: str,
) -> None:
    upstream.behaviour.models = models
    upstream.behaviour.models_status = models_status
    settings = _settings(database_url, upstream.base_url, log_level="INFO")
    with _capture() as logs:
        async with served(settings) as base, httpx.AsyncClient(base_url=base) as c:
            for _ in range(50):
                health = await c.get("/health")
                if health.json()["model"]["status"] != "unknown":
                    break
                await asyncio.sleep(0.05)
            second = await c.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["model"]["status"] == status
    assert second.json()["model"] == health.json()["model"]  # cached, not asked again
    assert upstream.behaviour.calls == 0  # health never calls the model
    assert any(logged in r["message"] for r in logs.records()), logs.text
