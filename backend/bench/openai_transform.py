"""What the agent's OpenAI client saves per model call: the SDK's request transform against
`request_body`, on the bodies the Agents SDK sends for conversations of growing length.

    python -m bench.openai_transform

Decision P4 in specs/decisions.md keeps the figures.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params

from todochat.agent.openai_client import request_body

_TOOLS = ("add_task", "list_tasks", "complete_task", "delete_task", "update_task")


def chat_body(exchanges: int) -> dict[str, Any]:
    """A chat completion body of `exchanges` add-a-task exchanges (four items each)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You manage a todo list."}]
    for i in range(exchanges):
        call = {"id": f"c{i}", "type": "function"}
        call["function"] = {"name": "add_task", "arguments": json.dumps({"title": f"t{i}"})}
        messages += [
            {"role": "user", "content": f"add task {i}"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"task_id": i})},
            {"role": "assistant", "content": f"Added task {i}."},
        ]
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    tools = [
        {"type": "function", "function": {"name": n, "parameters": schema, "strict": True}}
        for n in _TOOLS
    ]
    return {"messages": messages, "model": "m", "tools": tools, "temperature": 0.2}


async def per_call_ms(body: dict[str, Any], *, rounds: int = 30) -> tuple[float, float]:
    kind = completion_create_params.CompletionCreateParamsNonStreaming
    for _ in range(5):
        await async_maybe_transform(body, kind)
    started = time.perf_counter()
    for _ in range(rounds):
        await async_maybe_transform(body, kind)
    transform = (time.perf_counter() - started) / rounds * 1000
    started = time.perf_counter()
    for _ in range(rounds):
        request_body(body)
    direct = (time.perf_counter() - started) / rounds * 1000
    return transform, direct


async def main() -> None:
    print("items  transform_ms  request_body_ms")
    for exchanges in (0, 3, 7, 15):
        body = chat_body(exchanges)
        transform, direct = await per_call_ms(body)
        print(f"{len(body['messages']):5d}  {transform:12.2f}  {direct:15.4f}")


if __name__ == "__main__":
    asyncio.run(main())
