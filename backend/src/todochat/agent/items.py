"""Conversion between this service's messages and the Agents SDK's items, in one place.

The SDK's formats stop here: the rest of the service hands the agent stored messages
(`MessageRead`) and gets typed tool calls (`ToolCall`) back.
"""

from __future__ import annotations

import json
from typing import Any

from agents import TResponseInputItem

from todochat.conversations.schemas import MessageRead, ToolCall


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
    if name == "list_tasks" and isinstance(output, dict) and isinstance(output.get("result"), list):
        return output["result"]
    return output


def tool_arguments(arguments_json: str | None) -> dict[str, Any]:
    """A call's arguments as the model wrote them; anything but a JSON object reads as {}."""
    try:
        arguments = json.loads(arguments_json or "{}")
    except ValueError:
        return {}
    return arguments if isinstance(arguments, dict) else {}


def tool_call(*, call_id: str, name: str, arguments_json: str | None, output: Any) -> ToolCall:
    """One finished tool call, as stored with the reply and shown to the client."""
    return ToolCall(
        id=call_id,
        name=name,
        arguments=tool_arguments(arguments_json),
        result=tool_result_as_json(name, output),
    )


def is_tool_error(call: ToolCall) -> bool:
    return isinstance(call.result, dict) and "error" in call.result
