"""Reading the conversation the Runner hands over: the latest user message, this turn's tool
calls so far, and what earlier turns did and asked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from agents import TResponseInputItem

from todochat.agent.offline.cleaning import READ_MAX_CHARS, readable_part
from todochat.agent.offline.intent import KIND_FOR_TOOL, LIST, Kind
from todochat.agent.offline.matching import TaskView
from todochat.agent.offline.tool_output import (
    as_dict,
    as_task_id,
    load_text,
    parse_tool_output,
    task_views,
    text_of,
)

WHICH_MARKER = "Which one should I"  # read back from history to resolve the user's answer
TITLE_MARKER = "What should the new title"  # likewise, for "rename task 3" without a title
OFFER_MARKER = "Do you want me to add"  # "yes" then adds what the user said before
BULK_MARKER = "Say yes to delete them"  # "yes" then deletes the tasks that reply named


@dataclass
class Exchange:
    """One tool call of the current turn, with its (decoded) output once available."""

    name: str
    args: dict[str, Any]
    output: Any = None
    answered: bool = False
    more: bool = False  # a list_tasks answer cut to its newest tasks


@dataclass
class Conversation:
    user_text: str
    turn: list[Exchange]
    last_touched: int | None  # task id the earlier turns acted on most recently
    last_action: Kind | None  # kind of the most recent mutating tool call in earlier turns
    previous_user_text: str = ""  # lets "7" / "the one with dad" answer our own question
    asked_which: bool = False  # the last assistant reply asked the user to pick a task
    asked_title: bool = False  # the last assistant reply asked for a new title
    offered: bool = False  # the last assistant reply offered to add the previous message
    which_ids: tuple[int, ...] = ()  # the candidates that "which one?" listed, in order
    last_tool: str | None = None  # the most recent add/complete/delete/update in earlier turns
    last_title: str = ""  # the title of the task last touched, as the tools reported it
    # Ids of the latest list shown, in display order, while no task was touched after it:
    # "the first one" / "the last one" point into it.
    listing: tuple[int, ...] = ()
    cut: bool = False  # the message was longer than READ_MAX_CHARS; only its start was read
    # The tasks a bulk delete asked to confirm ("Say yes to delete them"), by their "#N".
    bulk_ids: tuple[int, ...] = ()
    steps: int = 0  # the model steps of this turn that called tools


def _normalise_input(raw_input: str | list[TResponseInputItem]) -> list[dict[str, Any]]:
    if isinstance(raw_input, str):
        return [{"role": "user", "content": raw_input}]
    # Items are only read, so plain dicts (all the Runner sends) are used as they are: this runs
    # on every step over the whole history.
    items = cast(list[Any], raw_input)
    return [item if type(item) is dict else as_dict(item) for item in items]


def _is_user(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "user" and item.get("type", "message") == "message"


def _args_of(item: Mapping[str, Any]) -> dict[str, Any]:
    args = item.get("arguments")
    decoded = load_text(args) if isinstance(args, str) else args
    return dict(decoded) if isinstance(decoded, Mapping) else {}


def _current_turn(items: Sequence[dict[str, Any]]) -> list[Exchange]:
    by_call: dict[str, Exchange] = {}
    for item in items:
        kind = item.get("type")
        call_id = str(item.get("call_id") or "")
        if kind == "function_call":
            by_call[call_id] = Exchange(str(item.get("name") or ""), _args_of(item))
        elif kind == "function_call_output" and call_id in by_call:
            by_call[call_id].output = parse_tool_output(item.get("output"))
            by_call[call_id].answered = True
            by_call[call_id].more = by_call[call_id].name == LIST and _cut_list(item.get("output"))
    return list(by_call.values())


def _cut_list(raw: Any) -> bool:
    decoded = load_text(raw) if isinstance(raw, str) else raw
    return isinstance(decoded, Mapping) and decoded.get("more") is True


def display_order(tasks: Sequence[TaskView]) -> list[TaskView]:
    """Lists are shown oldest first, the order the tasks were added in."""
    return sorted(tasks, key=lambda t: t.id)


@dataclass
class _History:
    """What earlier turns did, read newest first."""

    touched: int | None = None
    title: str = ""
    tool: str | None = None
    listing: tuple[int, ...] | None = None


class _CallNames:
    """The tool name of each call id (its latest function_call), looked up from the end.

    `_read_history` usually stops after the last few items, so the items are indexed only as
    far back as a lookup needs, not over the whole history on every step.
    """

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self._items = items
        self._next = len(items) - 1
        self._names: dict[str, str] = {}

    def get(self, call_id: str) -> str:
        while call_id not in self._names and self._next >= 0:
            item = self._items[self._next]
            self._next -= 1
            if item.get("type") == "function_call":
                self._names.setdefault(str(item.get("call_id")), str(item.get("name")))
        return self._names.get(call_id, "")


def _read_history(earlier: Sequence[dict[str, Any]]) -> _History:
    history = _History()
    names = _CallNames(earlier)
    for item in reversed(earlier):
        kind = item.get("type")
        if kind not in ("function_call", "function_call_output"):
            continue
        name = names.get(str(item.get("call_id")))
        if kind == "function_call_output" and name == LIST and history.tool is None:
            if history.listing is None:
                rows = task_views(parse_tool_output(item.get("output")))
                history.listing = tuple(t.id for t in display_order(rows))
            continue
        if name == LIST:
            continue
        decoded = parse_tool_output(item.get("output")) if kind == "function_call_output" else {}
        output: Mapping[str, Any] = decoded if isinstance(decoded, Mapping) else {}
        if "error" in output:
            continue
        args = _args_of(item) if kind == "function_call" else {}
        found = as_task_id(output.get("task_id", output.get("id"))) if output else None
        task_id = found if found is not None else as_task_id(args.get("task_id"))
        if history.touched is None and task_id is not None:
            history.touched = task_id
            history.tool = name
        if history.touched is not None and task_id == history.touched and not history.title:
            title = output.get("title") if output else args.get("title")
            history.title = str(title or "")
        if history.touched is not None and history.title:
            break
    return history


_HASH_ID = re.compile(r"#(\d+)")


def read_conversation(raw_input: str | list[TResponseInputItem]) -> Conversation:
    items = _normalise_input(raw_input)
    # Every lookup here scans from the end and stops at the first match: the answer is near the
    # end, and this runs on every step over the whole history.
    last_user = next((i for i in range(len(items) - 1, -1, -1) if _is_user(items[i])), -1)
    earlier = items[: max(last_user, 0)]
    history = _read_history(earlier)
    action = next(
        (
            KIND_FOR_TOOL[str(it.get("name"))]
            for it in reversed(earlier)
            if it.get("type") == "function_call" and it.get("name") in KIND_FOR_TOOL
        ),
        None,
    )
    previous_user = next((it for it in reversed(earlier) if _is_user(it)), None)
    last_reply: dict[str, Any] = next(
        (it for it in reversed(earlier) if it.get("role") == "assistant"), {}
    )
    reply_text = text_of(last_reply.get("content"))
    user_text = text_of(items[last_user].get("content")) if last_user >= 0 else ""
    this_turn = items[last_user + 1 :]
    return Conversation(
        user_text=readable_part(user_text),
        cut=len(user_text) > READ_MAX_CHARS,
        turn=_current_turn(this_turn),
        steps=_steps(this_turn),
        last_touched=history.touched,
        last_action=action,
        previous_user_text=readable_part(text_of(previous_user.get("content")))
        if previous_user
        else "",
        asked_which=WHICH_MARKER in reply_text,
        asked_title=TITLE_MARKER in reply_text,
        offered=OFFER_MARKER in reply_text,
        which_ids=tuple(int(n) for n in _HASH_ID.findall(reply_text))
        if WHICH_MARKER in reply_text
        else (),
        bulk_ids=_bulk_ids(reply_text),
        last_tool=history.tool,
        last_title=history.title,
        listing=history.listing or (),
    )


_BULK_IDS = re.compile(r" \(((?:#\d++, )*+#\d++)\)")


def _bulk_ids(reply_text: str) -> tuple[int, ...]:
    """The ids in "Say yes to delete them (#3, #4, #9)", after the last such marker."""
    at = reply_text.rfind(BULK_MARKER)
    found = _BULK_IDS.match(reply_text, at + len(BULK_MARKER)) if at >= 0 else None
    return tuple(int(n) for n in _HASH_ID.findall(found[1])) if found else ()


def _steps(items: Sequence[dict[str, Any]]) -> int:
    """How many model steps called tools: the calls of one step come one after another."""
    calls = [item.get("type") == "function_call" for item in items]
    return sum(1 for i, call in enumerate(calls) if call and (i == 0 or not calls[i - 1]))


def calls_named(conv: Conversation, name: str) -> list[Exchange]:
    return [e for e in conv.turn if e.name == name]
