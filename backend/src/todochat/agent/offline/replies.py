"""The sentences the offline model answers with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.conversation import BULK_MARKER, WHICH_MARKER, Exchange, display_order
from todochat.agent.offline.intent import ListStatus
from todochat.agent.offline.matching import TaskView
from todochat.agent.offline.tool_output import task_views

HELP_TEXT = (
    'I\'m your to-do assistant. I can add tasks ("add buy milk"), show them ("what\'s '
    'pending?"), mark them done ("I finished task 3"), rename them or change their '
    "description, and delete them. What would you like to do?"
)
GREETING_TEXT = "Hi there! " + HELP_TEXT
CANCEL_TEXT = "No problem, I've left your tasks as they are."
THANKS_TEXT = "You're welcome! Just tell me whenever you want to add, update or finish a task."
UNKNOWN_TEXT = (
    "I'm a to-do assistant, so I can't help with that, but I can add, list, complete, update "
    'or delete your tasks. For example, say "remind me to call mom".'
)
VERB = {"complete": "complete", "delete": "delete", "update": "update"}


def _ref(task_id: Any, title: Any) -> str:
    return f"'{title}' (task #{task_id})" if title else f"task #{task_id}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _error_sentence(kind: str, exchange: Exchange) -> str:
    task_id = exchange.args.get("task_id", "?")
    error = str(exchange.output.get("error", "")) if isinstance(exchange.output, Mapping) else ""
    if "not found" in error.lower() or not error:
        return f"Sorry, I couldn't find task #{task_id}: it was not found, so nothing changed."
    return f"Sorry, I couldn't {VERB.get(kind, kind)} task #{task_id}: {error}."


def _success(exchange: Exchange) -> bool:
    return isinstance(exchange.output, Mapping) and "error" not in exchange.output


def _done_ref(exchange: Exchange) -> str:
    out = exchange.output if isinstance(exchange.output, Mapping) else {}
    task_id = out.get("task_id", out.get("id", exchange.args.get("task_id")))
    return _ref(task_id, out.get("title") or exchange.args.get("title"))


def action_reply(
    kind: str, exchanges: Sequence[Exchange], *, status: ListStatus | None = None
) -> str:
    """What the tools did, from their results; `status` names a bulk delete's tasks
    ("Deleted 4 completed tasks")."""
    done = [e for e in exchanges if _success(e)]
    sentences = [_error_sentence(kind, e) for e in exchanges if not _success(e)]
    if len(done) > 1 and kind in _MANY:
        sentences.insert(0, _many_sentence(kind, done, status))
    elif done:
        sentences.insert(0, _success_sentence(kind, [_done_ref(e) for e in done], exchanges))
    return " ".join(sentences)


# Several tasks at once: the count first, then the tasks (a reply never lists a thousand).
_MANY = {"add": "Added {n} tasks", "complete": "Marked {n} tasks as done", "delete": "Deleted {n} "}
_MANY_LISTED = 10


def _many_sentence(kind: str, done: Sequence[Exchange], status: ListStatus | None) -> str:
    head = _MANY[kind].format(n=len(done))
    if kind == "delete":
        head += {"completed": "completed ", "pending": "pending "}.get(status or "", "") + "tasks"
    names = [_short_ref(e) for e in done[:_MANY_LISTED]]
    if len(done) > _MANY_LISTED:
        names.append(f"{len(done) - _MANY_LISTED} more")
    return f"{head}: {_join(names)}."


def _short_ref(exchange: Exchange) -> str:
    out = exchange.output if isinstance(exchange.output, Mapping) else {}
    task_id = out.get("task_id", out.get("id", exchange.args.get("task_id")))
    title = out.get("title") or exchange.args.get("title")
    return f"'{title}' (#{task_id})" if title else f"#{task_id}"


def _success_sentence(kind: str, refs: Sequence[str], exchanges: Sequence[Exchange]) -> str:
    if kind == "add":
        return f"Done! I've added {_join(refs)} to your list."
    if kind == "complete":
        return f"Nice work! I've marked {_join(refs)} as complete."
    if kind == "delete":
        return f"Okay, I've deleted {_join(refs)}."
    changed = [e for e in exchanges if _success(e)]
    if not any("title" in e.args for e in changed):
        return f"Got it, I've updated the description of {_join(refs)}."
    renames = [_rename_ref(e) for e in changed]
    with_desc = (
        " and updated the description" if any("description" in e.args for e in changed) else ""
    )
    return f"Got it, I've renamed {_join(renames)}{with_desc}."


def _rename_ref(exchange: Exchange) -> str:
    out = exchange.output if isinstance(exchange.output, Mapping) else {}
    title = out.get("title") or exchange.args.get("title")
    return f"task #{out.get('task_id', exchange.args.get('task_id'))} to '{title}'"


def list_reply(status: str, output: Any, *, more: bool = False) -> str:
    if isinstance(output, Mapping) and "error" in output:
        return f"Sorry, I couldn't load your tasks: {output['error']}."
    tasks = display_order(task_views(output))
    label = {"pending": "pending ", "completed": "completed "}.get(status, "")
    if not tasks:
        if status == "completed":
            return "You haven't completed any tasks yet."
        if status == "pending":
            return "You have no pending tasks. All clear!"
        return 'Your task list is empty. Try "add buy milk" to create your first task.'
    lines = [
        f"- #{t.id} {t.title}" + (" (done)" if t.completed and status == "all" else "")
        for t in tasks
    ]
    noun = "task" if len(tasks) == 1 else "tasks"
    if more:
        return (
            f"You have more than {len(tasks)} {label}{noun}; here are the newest "
            f"{len(tasks)}:\n" + "\n".join(lines)
        )
    return f"You have {len(tasks)} {label}{noun}:\n" + "\n".join(lines)


_QUERY_EDGES = re.compile(
    r"^(?:(?:the|my|a|an|task|item|one|about|to)\s++)++|(?<!\s)(?:\s++(?:task|item|one|todo)){1,6}+$",
    FLAGS,
)


def shown_query(query: str) -> str:
    return _QUERY_EDGES.sub("", query).strip() or query


def ambiguous_reply(kind: str, query: str, tasks: Sequence[TaskView]) -> str:
    names = _join([f"#{t.id} {t.title}" for t in display_order(tasks)])
    return (
        f"I found {len(tasks)} tasks matching '{shown_query(query)}': {names}. "
        f"{WHICH_MARKER} {VERB.get(kind, kind)}? You can tell me its number."
    )


def bulk_delete_question(status: ListStatus, tasks: Sequence[TaskView]) -> str:
    """Asked before a bulk delete of more than a handful of tasks. The ids close the question,
    after the titles, so that "yes" deletes what was asked about and no title can add to it."""
    label = {"completed": "completed ", "pending": "pending "}.get(status, "")
    shown = display_order(tasks)
    names = [f"'{t.title}'" for t in shown[:_MANY_LISTED]]
    if len(shown) > _MANY_LISTED:
        names.append(f"{len(shown) - _MANY_LISTED} more")
    ids = ", ".join(f"#{t.id}" for t in shown)
    return (
        f"That would delete {len(shown)} {label}tasks: {_join(names)}. Are you sure? "
        f"{BULK_MARKER} ({ids}), or no to keep them."
    )


def no_match_reply(query: str) -> str:
    return (
        f"I couldn't find a task matching '{shown_query(query)}'. "
        'Say "show my tasks" to see what\'s on your list.'
    )


def missing_tool(name: str) -> str:
    return f"Sorry, I can't do that right now because the {name} tool isn't available."
