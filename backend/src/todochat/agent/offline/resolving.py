"""Resolving a target to task ids: by id, by "it", by position, by title words or "all"."""

from __future__ import annotations

import re
from collections.abc import Sequence

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.conversation import Conversation, calls_named, display_order
from todochat.agent.offline.intent import LIST, Intent, ListStatus, PlannedCall, Step
from todochat.agent.offline.lexicon import CHECK_MARK
from todochat.agent.offline.matching import TaskView, keywords, match_tasks, names_whole_title
from todochat.agent.offline.replies import (
    UNKNOWN_TEXT,
    VERB,
    ambiguous_reply,
    bulk_delete_question,
    list_reply,
    missing_tool,
    no_match_reply,
)
from todochat.agent.offline.titles import strip_quotes
from todochat.agent.offline.tool_output import task_views


def _resolve_query(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | int | tuple[int, ...]:
    """By-name targets: list first, then act on the single match or ask/say none. Several
    names ("milk and eggs", "laundry ✔ dishes") are each looked up when the whole is not one
    task's title."""
    listed = [e for e in calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return "Which task do you mean? Please tell me its number."
        return [PlannedCall(LIST, {"status": "all"})]
    tasks = task_views(listed[-1].output)
    query = intent.target.query
    prefer_pending = intent.kind == "complete"
    matches = match_tasks(query, tasks, prefer_pending=prefer_pending)
    # Only completing and deleting: one new title for several tasks is surely a misreading.
    whole = len(matches) == 1 and names_whole_title(query, matches[0])
    if intent.kind in ("complete", "delete") and not whole:
        several = _match_each(query, tasks, prefer_pending=prefer_pending)
        if several:
            return several
    if not matches:
        return UNKNOWN_TEXT if intent.soft else no_match_reply(query)
    if len(matches) > 1:
        return ambiguous_reply(intent.kind, query, matches)
    return matches[0].id


# Between the names of several tasks: "milk, eggs and bread", "laundry ✔ dishes ✔".
_NAME_BREAK = re.compile(
    rf"(?<!\s)\s*+(?:,\s*+(?:and\s++)?|;|&|{CHECK_MARK})\s*+"
    r"|(?<!\s)\s++(?:and|plus|as well as)\s++",
    FLAGS,
)


def _match_each(
    query: str, tasks: Sequence[TaskView], *, prefer_pending: bool
) -> tuple[int, ...] | None:
    """One task for each name in the query, or None unless every name finds exactly one."""
    names = [strip_quotes(part) for part in _NAME_BREAK.split(query) if keywords(part)]
    if len(names) < 2:
        return None
    ids: list[int] = []
    for name in names:
        found = match_tasks(name, tasks, prefer_pending=prefer_pending)
        if len(found) != 1 or found[0].id in ids:
            return None
        ids.append(found[0].id)
    return tuple(ids)


def _resolve_ordinal(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step | int:
    """ "the first one": a row of the list the user last saw, or of a fresh list."""
    position = intent.target.ordinal
    # After "which one?", "the second one" counts among the candidates we named.
    rows: Sequence[int] = conv.which_ids or conv.listing
    if not rows:
        listed = [e for e in calls_named(conv, LIST) if e.answered]
        if not listed:
            if LIST not in tools:
                return "Which task do you mean? Please tell me its number."
            status = "pending" if intent.kind == "complete" else "all"
            return [PlannedCall(LIST, {"status": status})]
        rows = [t.id for t in display_order(task_views(listed[-1].output))]
    if not rows:
        return "Your list is empty, so there's nothing to " + VERB.get(intent.kind, "change") + "."
    if position > len(rows):
        return f"There are only {len(rows)} tasks on the list. Which one do you mean?"
    return rows[position - 1] if position > 0 else rows[position]


# A bulk delete by description ("everything", "the done ones") of more tasks than this asks
# first: one misread word must not empty the list.
CONFIRM_OVER = 5


def _resolve_every(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | tuple[int, ...]:
    """ "mark them all done": every pending task; "delete the done ones": every completed one,
    after a "yes" when there are more than a handful. Renaming everything is refused."""
    status: ListStatus = intent.target.status or "all"
    if intent.kind == "complete":
        status = "pending"
    listed = [e for e in calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return missing_tool(LIST)
        return [PlannedCall(LIST, {"status": status})]
    if intent.kind == "update":
        shown = list_reply("all", listed[-1].output)
        return (
            f"{shown}\nTo be safe I don't {VERB.get(intent.kind, 'change')} everything at once. "
            'Tell me which ones by number, for example "rename 3 to Buy bread".'
        )
    rows = [
        t
        for t in display_order(task_views(listed[-1].output))
        if status == "all" or t.completed == (status == "completed")
    ]
    if not rows:
        return _nothing_to(intent.kind, status)
    if intent.kind == "delete" and len(rows) > CONFIRM_OVER:
        return bulk_delete_question(status, rows)
    return tuple(t.id for t in rows)


def _nothing_to(kind: str, status: ListStatus) -> str:
    if kind == "complete":
        return "You have no pending tasks, so there's nothing to complete. All clear!"
    if status == "all":
        return "Your list is already empty, so there's nothing to delete."
    return f"You have no {status} tasks, so there's nothing to delete."


def resolve_ids(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | tuple[int, ...]:
    """Task ids to act on (a tuple), or the step to take first (a list_tasks call, a question)."""
    target = intent.target
    if target.ids:
        return target.ids
    if target.ref:
        after_list = bool(target.ordinal and conv.listing)  # "the last one" of a list just shown
        if conv.last_touched is not None and not after_list:
            return (conv.last_touched,)
        if not target.ordinal:
            return "Which task do you mean? Please tell me its number or name."
    if target.every:
        return _resolve_every(intent, conv, tools)
    resolved: Step | int | tuple[int, ...]
    if target.ordinal:
        resolved = _resolve_ordinal(intent, conv, tools)
    elif target.query:
        resolved = _resolve_query(intent, conv, tools)
    else:
        return "Which task do you mean? Please tell me its number or name."
    return (resolved,) if isinstance(resolved, int) else resolved
