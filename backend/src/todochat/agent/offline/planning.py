"""Planning: what to do next given the intent and this turn's tool calls so far."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from agents import TResponseInputItem

from todochat.agent.offline.cleaning import CUT_NOTE, FLAGS, clean_message
from todochat.agent.offline.conversation import (
    OFFER_MARKER,
    TITLE_MARKER,
    Conversation,
    calls_named,
    read_conversation,
)
from todochat.agent.offline.corrections import merge_correction, with_partial_title
from todochat.agent.offline.intent import (
    ADD,
    DELETE,
    LIST,
    TOOL_FOR_KIND,
    UNKNOWN,
    UPDATE,
    Intent,
    NewTask,
    PlannedCall,
    Step,
    Target,
)
from todochat.agent.offline.matching import keywords, stem_of
from todochat.agent.offline.parser import parse_intent
from todochat.agent.offline.replies import (
    CANCEL_TEXT,
    GREETING_TEXT,
    HELP_TEXT,
    THANKS_TEXT,
    UNKNOWN_TEXT,
    action_reply,
    list_reply,
    missing_tool,
)
from todochat.agent.offline.resolving import resolve_ids
from todochat.agent.offline.targets import loose_target, parse_target
from todochat.agent.offline.titles import split_description
from todochat.agent.offline.tool_output import as_task_id

# Safety valve: a confused plan must never make the Runner loop until max_turns. A plan takes
# at most three steps (list, act, answer); a bulk action is one step of many calls, and the
# number of calls is bounded by the turn's own cap (AGENT_MAX_TOOL_CALLS, agent/turn_limits.py).
_MAX_STEPS_PER_TURN = 6


def _plan_add(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if ADD not in tools:
        return missing_tool(ADD)
    made = {str(e.args.get("title", "")).lower() for e in calls_named(conv, ADD)}
    missing = [
        PlannedCall(ADD, _add_args(t)) for t in intent.new_tasks if t.title.lower() not in made
    ]
    return missing or action_reply("add", calls_named(conv, ADD))


def _add_args(task: NewTask) -> dict[str, Any]:
    args: dict[str, Any] = {"title": task.title}
    if task.description:
        args["description"] = task.description
    return args


def _plan_list(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if LIST not in tools:
        return missing_tool(LIST)
    calls = calls_named(conv, LIST)
    if not calls:
        return [PlannedCall(LIST, {"status": intent.status})]
    return list_reply(intent.status, calls[-1].output, more=calls[-1].more)


def _action_args(intent: Intent, task_id: int) -> dict[str, Any]:
    args: dict[str, Any] = {"task_id": task_id}
    if intent.title:
        args["title"] = intent.title[:1].upper() + intent.title[1:]
    if intent.description:
        args["description"] = intent.description
    return args


def _plan_targeted(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    tool = TOOL_FOR_KIND[intent.kind]
    if tool not in tools:
        return missing_tool(tool)
    if intent.kind == "update" and not (intent.title or intent.description):
        return f"{TITLE_MARKER} or description be?"
    ids = resolve_ids(intent, conv, tools)
    if not isinstance(ids, tuple):
        return ids
    if intent.kind == "update" and intent.title and len(ids) == 1:
        intent = with_partial_title(intent, ids[0], conv)
    done = {as_task_id(e.args.get("task_id")) for e in calls_named(conv, tool)}
    missing = [PlannedCall(tool, _action_args(intent, i)) for i in ids if i not in done]
    done_calls = calls_named(conv, tool)
    return missing or action_reply(intent.kind, done_calls, status=intent.target.status)


def _plan_correction(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    """ "make that X" / "actually X" right after adding or renaming a task: rename it."""
    text = intent.title or ""
    if conv.last_tool not in (ADD, UPDATE) or conv.last_touched is None or not conv.last_title:
        if intent.soft or len(text.split()) < 2:
            return UNKNOWN_TEXT
        return "Which task should I change? Tell me its number or name and the new title."
    if intent.soft:
        # A bare "actually X" must clearly be about that task, or it is something else.
        first_same = stem_of(text.split()[0].lower()) == stem_of(conv.last_title.split()[0].lower())
        if not (keywords(text) & keywords(conv.last_title)) and not first_same:
            return UNKNOWN_TEXT
    title = merge_correction(conv.last_title, text)
    update = Intent("update", target=Target(ids=(conv.last_touched,)), title=title)
    return _plan_targeted(update, conv, tools)


def _plan_undo(conv: Conversation, tools: frozenset[str]) -> Step:
    if conv.last_tool == ADD and conv.last_touched is not None:
        return _plan_targeted(
            Intent("delete", target=Target(ids=(conv.last_touched,))), conv, tools
        )
    if conv.last_tool == DELETE and conv.last_title:
        return _plan_add(Intent("add", new_tasks=(NewTask(conv.last_title),)), conv, tools)
    return (
        "Sorry, I can only undo adding or deleting a task. Tell me what to change and I'll do it."
    )


def _carry_over(intent: Intent, conv: Conversation) -> Intent:
    """Complete an elliptic message ("7", "the one with dad") from the previous request."""
    previous = parse_intent(conv.previous_user_text) if conv.previous_user_text else UNKNOWN
    # "yes" (or "delete them") to "Say yes to delete them": exactly the tasks that reply named.
    agreeing = intent.kind == "confirm" or (
        intent.kind == "delete" and (intent.target.ref or intent.target.every)
    )
    if conv.bulk_ids and agreeing:
        target = Target(ids=conv.bulk_ids, status=previous.target.status)
        return Intent("delete", target=target)
    if intent.kind == "confirm" and conv.offered and previous.kind == "offer":
        return Intent("add", new_tasks=previous.new_tasks)
    elliptic = intent.kind in ("unknown", "correct", "offer") or intent.soft
    if conv.asked_title and elliptic and previous.kind == "update":
        title = intent.title if intent.kind == "correct" and intent.title else conv.user_text
        new = split_description(clean_message(title).text)
        return Intent("update", target=previous.target, title=new.title)
    # After "which one?", anything that is not a clear request of its own is the answer.
    answering = conv.asked_which and (
        intent.kind in ("unknown", "correct", "offer", "confirm") or intent.soft
    )
    if intent.kind != "again" and not answering:
        return intent
    # Title words answering our "which one?" question become the lookup query.
    text = clean_message(conv.user_text).text
    target = (loose_target(text) or parse_target(text)) if answering else intent.target
    if previous.kind in TOOL_FOR_KIND:
        return Intent(
            previous.kind, target=target, title=previous.title, description=previous.description
        )
    if intent.kind == "again" and conv.last_action is not None:
        return Intent(conv.last_action, target=target)
    return UNKNOWN


# "and also book a hotel" right after an add: one more task, no need to ask.
# Run on the message as sent. Each "ok!! " is atomic: the punctuation between two fillers
# could otherwise be shared between them in every possible way.
_CONTINUING = re.compile(
    r"^(?>\W*+(?:ok(?:ay)?|and|so|oh)\W++)*(?:and|also|plus|oh and|another one)\b|"
    r"\b(?:too|as well)\W*+$",
    FLAGS,
)


def plan_step(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if conv.steps >= _MAX_STEPS_PER_TURN:
        return "Sorry, that got complicated. Could you ask me one thing at a time?"
    intent = _carry_over(intent, conv)
    if intent.kind == "add":
        return _plan_add(intent, conv, tools)
    if intent.kind == "list":
        return _plan_list(intent, conv, tools)
    if intent.kind in TOOL_FOR_KIND:
        return _plan_targeted(intent, conv, tools)
    if intent.kind == "correct":
        return _plan_correction(intent, conv, tools)
    if intent.kind == "undo":
        return _plan_undo(conv, tools)
    if intent.kind == "offer":
        continuing = conv.last_tool == ADD and _CONTINUING.search(conv.user_text)
        if not intent.soft or continuing:
            return _plan_add(Intent("add", new_tasks=intent.new_tasks), conv, tools)
        title = intent.new_tasks[0].title
        return f"{OFFER_MARKER} '{title}' to your list? Say yes and I'll add it."
    return _CANNED_REPLIES.get(intent.kind, UNKNOWN_TEXT)


_CANNED_REPLIES: dict[str, str] = {
    "greet": GREETING_TEXT,
    "help": HELP_TEXT,
    "thanks": THANKS_TEXT,
    "cancel": CANCEL_TEXT,
    "confirm": "Okay! Tell me whenever you want to add, list, update or finish a task.",
}


def decide(raw_input: str | list[TResponseInputItem], tool_names: Iterable[str]) -> Step:
    """Whole pipeline for one model step: history -> intent -> next step."""
    conv = read_conversation(raw_input)
    step = plan_step(parse_intent(conv.user_text), conv, frozenset(tool_names))
    if conv.cut and isinstance(step, str):
        return f"{step} {CUT_NOTE}"
    return step
