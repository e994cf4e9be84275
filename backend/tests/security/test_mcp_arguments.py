"""MCP tool arguments (OWASP API3, API8), checked as strictly as REST bodies: unknown arguments
are refused, ids are JSON integers, text has no bad characters, and every refusal is in the
API's words, never the validation library's (its internal model names, its versioned URL).

Through `/mcp` on a real socket with the official MCP client; raw JSON-RPC only where the client
cannot send what an attacker can (a lone surrogate). Effects are read through the REST API.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import User
from tests.mcp_support import data, error_text, http_client

INTERNALS = ("Arguments", "pydantic", "http", "validation error", "[type=", "input_value")
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def tasks_of(rest: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    r = await rest.get(user.url("/tasks"), headers=user.headers)
    assert r.status_code == 200
    tasks: list[dict[str, Any]] = r.json()
    return tasks


def assert_our_words(message: str, expected: str) -> None:
    assert message == expected
    for fragment in INTERNALS:
        assert fragment not in message, fragment


REFUSED_CALLS = [
    ("complete_task", {"task_id": "abc"}, "task_id: Input should be a valid integer"),
    ("complete_task", {"task_id": 0}, "task_id: Input should be greater than or equal to 1"),
    ("delete_task", {}, "task_id: Field required"),
    ("add_task", {"title": 5}, "title: Input should be a valid string"),
    (
        "list_tasks",
        {"status": "done"},
        "status: Input should be 'all', 'pending' or 'completed'",
    ),
]


async def test_mcp_argument_errors_are_in_the_apis_words(live, rest) -> None:
    user = User()
    async with http_client(live.mcp_url, user.token) as client:
        for tool, arguments, expected in REFUSED_CALLS:
            result = await client.call_tool(tool, arguments)
            assert_our_words(error_text(result), expected)
        # The limits of the REST API's schemas, stated in the tool's input schema too.
        for title, expected in (
            ("x" * 201, "title: String should have at most 200 characters"),
            ("x" * 10_000, "title: String should have at most 200 characters"),
            ("", "title: String should have at least 1 character"),
            ("   ", "title: String should have at least 1 character"),
        ):
            result = await client.call_tool("add_task", {"title": title})
            assert_our_words(error_text(result), expected)
        result = await client.call_tool("add_task", {"title": "t", "description": "d" * 1001})
        assert_our_words(
            error_text(result), "description: String should have at most 1000 characters"
        )
        assert await tasks_of(rest, user) == []
        # Control: a well-formed call works.
        assert data(await client.call_tool("add_task", {"title": "ok"}))["status"] == "created"


def _valid_calls(task_id: int) -> dict[str, dict[str, Any]]:
    return {
        "add_task": {"title": "another", "description": "d"},
        "list_tasks": {"status": "all"},
        "update_task": {"task_id": task_id, "title": "renamed"},
        "complete_task": {"task_id": task_id},
        "delete_task": {"task_id": task_id},
    }


async def test_mcp_tools_refuse_unknown_arguments_like_rest(live, rest) -> None:
    user = User()
    async with http_client(live.mcp_url, user.token) as client:
        task_id = data(await client.call_tool("add_task", {"title": "keep"}))["task_id"]
        before = await tasks_of(rest, user)
        for tool, arguments in _valid_calls(task_id).items():
            for extra in ({"priority": "high"}, {"owner": "someone", "due": "tomorrow"}):
                result = await client.call_tool(tool, {**arguments, **extra})
                expected = "; ".join(f"{key}: Extra inputs are not permitted" for key in extra)
                assert_our_words(error_text(result), expected)
            assert await tasks_of(rest, user) == before, tool
        # Control: the same calls without the extra argument work, and so does a `user_id`
        # naming the caller (clients of the original tool list send one).
        for tool, arguments in _valid_calls(task_id).items():
            result = await client.call_tool(tool, {**arguments, "user_id": user.id})
            assert not result.is_error, (tool, result.content)
    assert [t["title"] for t in await tasks_of(rest, user)] == ["another"]


async def test_mcp_task_ids_must_be_json_integers(live, rest) -> None:
    user = User()
    async with http_client(live.mcp_url, user.token) as client:
        task_id = data(await client.call_tool("add_task", {"title": "pending"}))["task_id"]
        for value in (str(task_id), float(task_id), True, [task_id]):
            for tool in ("complete_task", "delete_task", "update_task"):
                arguments = {"task_id": value, **({"title": "x"} if tool == "update_task" else {})}
                result = await client.call_tool(tool, arguments)
                assert_our_words(error_text(result), "task_id: Input should be a valid integer")
        [task] = await tasks_of(rest, user)
        assert (task["title"], task["completed"]) == ("pending", False)
        # Control: the integer works.
        assert data(await client.call_tool("complete_task", {"task_id": task_id}))["status"] == (
            "completed"
        )


async def _raw_call(
    rest: httpx.AsyncClient, user: User, tool: str, arguments_json: str
) -> httpx.Response:
    body = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
        f'{{"name": "{tool}", "arguments": {arguments_json}}}}}'
    )
    headers = {**MCP_HEADERS, **user.headers, "Content-Type": "application/json"}
    return await rest.post("/mcp", content=body, headers=headers)


async def _result(
    rest: httpx.AsyncClient, user: User, tool: str, arguments_json: str
) -> dict[str, Any]:
    r = await _raw_call(rest, user, tool, arguments_json)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


def _refusal(result: dict[str, Any]) -> str:
    """A tool error as the wire carries it: `isError`, one text block, no structured content."""
    assert result["isError"] is True and "structuredContent" not in result, result
    [block] = result["content"]
    text: str = block["text"]
    return text


@pytest.mark.parametrize(
    "bad", ["\\u0000", "\\u001b", "\\u009b"], ids=["nul", "escape", "c1-control"]
)
async def test_mcp_text_arguments_with_bad_characters_are_refused(live, rest, bad) -> None:
    user = User()
    refused = "must not contain control characters or unpaired surrogates"
    result = await _result(rest, user, "add_task", f'{{"title": "milk{bad}"}}')
    assert _refusal(result) == f"title: {refused}"
    result = await _result(rest, user, "add_task", f'{{"title": "m", "description": "{bad}"}}')
    assert _refusal(result) == f"description: {refused}"
    assert await tasks_of(rest, user) == []
    # Control: clean text is stored, and then cannot be renamed to bad text either.
    result = await _result(rest, user, "add_task", '{"title": "milk"}')
    task_id = result["structuredContent"]["task_id"]
    result = await _result(
        rest, user, "update_task", json.dumps({"task_id": task_id, "title": "x"})
    )
    assert result["structuredContent"]["status"] == "updated"
    result = await _result(rest, user, "update_task", f'{{"task_id": {task_id}, "title": "{bad}"}}')
    assert _refusal(result) == f"title: {refused}"
    assert [t["title"] for t in await tasks_of(rest, user)] == ["x"]


async def test_a_lone_surrogate_never_reaches_an_mcp_tool(live, rest) -> None:
    """The transport's JSON parser refuses it: a JSON-RPC parse error, nothing stored."""
    user = User()
    r = await _raw_call(rest, user, "add_task", '{"title": "milk\\ud800"}')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32700
    assert await tasks_of(rest, user) == []
    # Control: a surrogate pair is one character, and is stored.
    r = await _raw_call(rest, user, "add_task", '{"title": "rocket \\ud83d\\ude80"}')
    assert r.status_code == 200 and r.json()["result"]["structuredContent"]["status"] == "created"
    assert [t["title"] for t in await tasks_of(rest, user)] == ["rocket 🚀"]
