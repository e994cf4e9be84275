"""Decoding tool results, whatever their wrapping (JSON text, MCP text parts, {"result": ...})."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

from todochat.agent.offline.matching import TaskView


def as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return cast(dict[str, Any], dump(exclude_unset=False))
    return {}


def text_of(content: Any) -> str:
    """Message content is a str or a list of {"type": "...text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        parts = (as_dict(p) for p in content)
        return "".join(str(p.get("text") or "") for p in parts)
    return ""


def load_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    # A function tool returning a dict is stringified with str(): Python literal syntax.
    if text[:1] in "[{":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    return text


def parse_tool_output(raw: Any) -> Any:
    """Decode a tool result whatever its wrapping (JSON text, MCP text parts, {"result": ...})."""
    if isinstance(raw, str):
        decoded = load_text(raw.strip())
        return decoded if isinstance(decoded, str) else parse_tool_output(decoded)
    if isinstance(raw, Mapping):
        if raw.get("type") in ("text", "input_text", "output_text") and "text" in raw:
            return parse_tool_output(raw["text"])
        for key in ("result", "structuredContent", "content", "tasks"):
            if key in raw and len(raw) <= 3 and "error" not in raw:
                return parse_tool_output(raw[key])
        return dict(raw)
    if isinstance(raw, (list, tuple)):
        decoded_parts = [parse_tool_output(as_dict(p) or p) for p in raw]
        if len(decoded_parts) == 1 and isinstance(raw[0], Mapping) and "type" in raw[0]:
            return decoded_parts[0]
        flat: list[Any] = []
        for part in decoded_parts:
            flat.extend(part if isinstance(part, list) else [part])
        return flat
    return raw


def as_task_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    return None


def task_views(output: Any) -> list[TaskView]:
    views: list[TaskView] = []
    for raw in output if isinstance(output, list) else []:
        if not isinstance(raw, Mapping):
            continue
        task_id = as_task_id(raw.get("id", raw.get("task_id")))
        if task_id is None:
            continue
        done = raw.get("completed", raw.get("status") == "completed")
        views.append(TaskView(task_id, str(raw.get("title") or ""), bool(done)))
    return views
