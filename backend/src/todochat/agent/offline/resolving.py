"""Resolving a target to task ids: by id, by "it", by position, by title words or "all"."""

from __future__ import annotations

from collections.abc import Sequence

from todochat.agent.offline.conversation import Conversation, calls_named, display_order
from todochat.agent.offline.intent import LIST, Intent, PlannedCall, Step
from todochat.agent.offline.matching import match_tasks
from todochat.agent.offline.replies import (
    UNKNOWN_TEXT,
    VERB,
    ambiguous_reply,
    list_reply,
    missing_tool,
    no_match_reply,
)
from todochat.agent.offline.tool_output import task_views


def _resolve_query(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step | int:
    """By-name targets: list first, then act on the single match or ask/say none."""
    listed = [e for e in calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return "Which task do you mean? Please tell me its number."
        return [PlannedCall(LIST, {"status": "all"})]
    tasks = task_views(listed[-1].output)
    query = intent.target.query
    matches = match_tasks(query, tasks, prefer_pending=intent.kind == "complete")
    if not matches:
        return UNKNOWN_TEXT if intent.soft else no_match_reply(query)
    if len(matches) > 1:
        return ambiguous_reply(intent.kind, query, matches)
    return matches[0].id


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


_BULK_LIMIT = 10  # keeps a bulk completion inside one model step


def _resolve_every(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | tuple[int, ...]:
    """ "mark them all done": every pending task. Deleting or renaming everything at once is
    refused: one misread word would lose the whole list."""
    listed = [e for e in calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return missing_tool(LIST)
        status = "pending" if intent.kind == "complete" else "all"
        return [PlannedCall(LIST, {"status": status})]
    if intent.kind != "complete":
        shown = list_reply("all", listed[-1].output)
        return (
            f"{shown}\nTo be safe I don't {VERB.get(intent.kind, 'change')} everything at once. "
            'Tell me which ones by number, for example "delete 3 and 4".'
        )
    tasks = display_order(task_views(listed[-1].output))
    pending = tuple(t.id for t in tasks if not t.completed)
    if not pending:
        return "You have no pending tasks, so there's nothing to complete. All clear!"
    if len(pending) > _BULK_LIMIT:
        return (
            f"You have {len(pending)} pending tasks; I can complete up to {_BULK_LIMIT} at once. "
            "Tell me which ones by number."
        )
    return pending


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
    if target.ordinal:
        resolved = _resolve_ordinal(intent, conv, tools)
    elif target.query:
        resolved = _resolve_query(intent, conv, tools)
    else:
        return "Which task do you mean? Please tell me its number or name."
    return (resolved,) if isinstance(resolved, int) else resolved
