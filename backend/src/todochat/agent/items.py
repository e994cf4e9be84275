"""Conversion between this service's messages and the Agents SDK's items, in one place.

The SDK's formats stop here: the rest of the service hands the agent stored messages
(`MessageRead`) and gets typed tool calls (`ToolCall`) back.
"""

from __future__ import annotations

import json
from typing import Any

from agents import TResponseInputItem

from todochat.conversations.schemas import MessageRead, ToolCall
from todochat.schemas import without_bad_characters


def history_as_input(history: list[MessageRead]) -> list[TResponseInputItem]:
    """Stored messages as model input; earlier tool calls stay visible, paired by call id."""
    items: list[TResponseInputItem] = []
    for message in history:
        if message.role == "user":
            items.append({"role": "user", "content": message.content})
            continue
        for call in message.tool_calls or []:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                }
            )
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.id,
                    "output": json.dumps(call.result),
                }
            )
        items.append({"role": "assistant", "content": message.content})
    return items


def tool_result_as_json(name: str, output: Any) -> Any:
    """The tool's output as JSON: MCP wraps list results as {"result": [...]} and hands tool
    errors over as text content, which becomes {"error": "<text>"}."""
    if isinstance(output, dict) and output.get("type") == "text":
        output = [output]
    if isinstance(output, list):
        texts = [
            item.get("text") if isinstance(item, dict) else getattr(item, "text", None)
            for item in output
        ]
        output = "".join(t for t in texts if isinstance(t, str))
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return {"error": output.removeprefix(f"Error executing tool {name}: ")}
    # A whole list is the contract's bare list; a cut one keeps its "more" and "note".
    if name == "list_tasks" and isinstance(output, dict) and set(output) == {"result"}:
        return output["result"]
    return output


# The raw arguments kept with a call whose arguments were not a JSON object, at most this long.
RAW_ARGUMENTS_CHARS = 2000
BAD_ARGUMENTS_MESSAGE = (
    "Not done: the arguments were not a JSON object. Call the tool again with its arguments "
    'as one JSON object, for example {"title": "Buy milk"}.'
)


def unknown_tool_message(name: str, tool_names: list[str]) -> str:
    """What the model is told when it calls a tool that does not exist."""
    shown = name if len(name) <= 60 else name[:60] + "…"
    return f"Not done: there is no tool named {shown!r}. The tools are: {', '.join(tool_names)}."


def _parsed_arguments(arguments_json: str | None) -> dict[str, Any] | None:
    try:
        arguments = json.loads(arguments_json or "{}")
    except ValueError:
        return None
    return arguments if isinstance(arguments, dict) else None


def tool_arguments(arguments_json: str | None) -> dict[str, Any]:
    """A call's arguments as the model wrote them; anything but a JSON object reads as {}."""
    return _parsed_arguments(arguments_json) or {}


def tool_call(*, call_id: str, name: str, arguments_json: str | None, output: Any) -> ToolCall:
    """One finished tool call, as stored with the reply and shown to the client (made storable:
    the model's words may hold characters no text field takes). Arguments that were not a JSON
    object are stored as `{}`, and as written under the result's `raw_arguments`."""
    arguments = _parsed_arguments(arguments_json)
    result = tool_result_as_json(name, output)
    if arguments is None:
        arguments = {}
        raw = (arguments_json or "")[:RAW_ARGUMENTS_CHARS]
        result = {**result, "raw_arguments": raw} if isinstance(result, dict) else result
    return ToolCall(
        id=without_bad_characters(call_id),
        name=without_bad_characters(name),
        arguments=without_bad_characters(arguments),
        result=without_bad_characters(result),
    )


def is_tool_error(call: ToolCall) -> bool:
    return isinstance(call.result, dict) and "error" in call.result
