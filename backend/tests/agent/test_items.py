"""The agent boundary's conversions (agent/items.py): stored messages to SDK items, tool
outputs to the JSON the client and the history see."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mcp.types import TextContent

from todochat.agent.items import history_as_input, is_tool_error, tool_arguments, tool_call
from todochat.conversations.schemas import MessageRead, ToolCall

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _message(id: int, role: str, content: str, calls: list[ToolCall] | None = None) -> MessageRead:
    return MessageRead(id=id, role=role, content=content, tool_calls=calls, created_at=NOW)  # type: ignore[arg-type]


def test_history_pairs_each_tool_call_with_its_output_before_the_reply() -> None:
    call = ToolCall(
        id="call_9", name="add_task", arguments={"title": "Milk"}, result={"task_id": 3}
    )
    items = history_as_input(
        [
            _message(1, "user", "add milk"),
            _message(2, "assistant", "Added Milk.", [call]),
            _message(3, "user", "thanks"),
            _message(4, "assistant", "You're welcome."),
        ]
    )
    assert items == [
        {"role": "user", "content": "add milk"},
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "add_task",
            "arguments": json.dumps({"title": "Milk"}),
        },
        {"type": "function_call_output", "call_id": "call_9", "output": json.dumps({"task_id": 3})},
        {"role": "assistant", "content": "Added Milk."},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "You're welcome."},
    ]


def test_tool_outputs_become_the_json_the_client_sees() -> None:
    created = {"task_id": 1, "status": "created", "title": "Milk"}
    # Structured content (a dict), MCP text content (JSON inside), and a list wrapped by MCP.
    assert (
        tool_call(call_id="c", name="add_task", arguments_json="{}", output=created).result
        == created
    )
    as_text = [TextContent(type="text", text=json.dumps(created))]
    assert (
        tool_call(call_id="c", name="add_task", arguments_json="{}", output=as_text).result
        == created
    )
    listed = {"result": [created]}
    assert tool_call(call_id="c", name="list_tasks", arguments_json="{}", output=listed).result == [
        created
    ]
    # Only list_tasks is unwrapped: another tool's {"result": ...} is its own shape.
    assert (
        tool_call(call_id="c", name="add_task", arguments_json="{}", output=listed).result == listed
    )


def test_a_tool_error_in_words_becomes_an_error_object_without_the_sdk_prefix() -> None:
    words = {"type": "text", "text": "Error executing tool delete_task: Task 7 not found"}
    call = tool_call(call_id="c", name="delete_task", arguments_json='{"task_id": 7}', output=words)
    assert call.result == {"error": "Task 7 not found"}
    assert call.arguments == {"task_id": 7}
    assert is_tool_error(call)
    assert not is_tool_error(ToolCall(id="c", name="add_task", arguments={}, result={"task_id": 1}))


def test_arguments_that_are_not_a_json_object_read_as_none_given() -> None:
    assert tool_arguments('{"title": "Milk"}') == {"title": "Milk"}
    for broken in (None, "", "not json", "[1, 2]", '"title"', "{"):
        assert tool_arguments(broken) == {}
