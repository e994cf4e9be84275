"""The intent parser: one message in, one ``Intent`` out.

Order matters: specific verbs (rename, delete, mark) are tried before the loose "I need to
..." add phrasing and before list questions; loose statements and the keyword classifier come
last. The rules here read a part of the message as a message of its own."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import islice

from todochat.agent.offline.adding import (
    COMMAND_HEAD,
    GENERAL_VERBS,
    NEED,
    REMIND,
    add_intent,
    add_titles,
    offer_intent,
    remind_intent,
)
from todochat.agent.offline.cleaning import FLAGS, Cleaned, clean_message
from todochat.agent.offline.completing import complete_intent, report_intent
from todochat.agent.offline.cues import PERSON, cue_intent
from todochat.agent.offline.deleting import delete_intent
from todochat.agent.offline.dialogue import (
    cancel_intent,
    confirm_intent,
    correction_intent,
    follow_up_intent,
    social_intent,
    undo_intent,
)
from todochat.agent.offline.intent import TOOL_FOR_KIND, UNKNOWN, Intent, NewTask, Target
from todochat.agent.offline.listing import list_intent
from todochat.agent.offline.matching import keywords
from todochat.agent.offline.targets import loose_target
from todochat.agent.offline.titles import split_description
from todochat.agent.offline.updating import update_intent


def _need_intent(text: str) -> Intent | None:
    """ "I need to X" / "I want to X": a new task, unless X is itself a request to us."""
    match = NEED.match(text)
    if not match:
        return None
    title = match["title"]
    while (inner := REMIND.match(title) or NEED.match(title)) is not None:
        title = inner["title"]
    if PERSON.match(title):
        return None  # "should I delete task 3?" asks us something
    if COMMAND_HEAD.match(title):
        nested = parse_intent(title)
        # "I need to delete task 4" is a request; "I need to cancel the gym" is a new task.
        concrete = nested.target.ids or nested.target.ref or nested.target.ordinal
        if nested.kind in ("add", "list") or (nested.kind in TOOL_FOR_KIND and concrete):
            return nested
    return add_titles(title, by_verbs=True)


# Two clauses, one of them an action on "it": "plants are watered, mark it done",
# "no longer need to call the plumber, remove it". The other clause names the task.
_CLAUSE_BREAK = re.compile(
    r"(?:(?<!\s)(?:\s*+(?:[,;:]|\.\s)|\s++[\-\u2014\u2013]\s)|(?<=\s)(?:[,;:]|\.\s))\s*"
    r"(?:(?:and|so|then)\s++)?|(?<!\s)\s++(?:and|so|then)\s+",
    FLAGS,
)
_ANAPHOR = re.compile(r"\b(?:it|that|this|them)\b", FLAGS)


_COMPOUND_MAX_CHARS = 300  # two short clauses; longer text is not split
_COMPOUND_MAX_BREAKS = 3  # only the last breaks: the action on "it" ends the message


def _compound_intent(text: str) -> Intent | None:
    if len(text) > _COMPOUND_MAX_CHARS or not _ANAPHOR.search(text):
        return None
    breaks = list(_CLAUSE_BREAK.finditer(text))[-_COMPOUND_MAX_BREAKS:]
    for brk in reversed(breaks):
        left, right = text[: brk.start()].strip(), text[brk.end() :].strip()
        if not left or not right:
            continue
        for action_text, other_text in ((right, left), (left, right)):
            action = _parse_clean(clean_message(action_text), _CLAUSE_RULES)
            if action.kind not in TOOL_FOR_KIND or not action.target.ref:
                continue
            target = _clause_target(other_text)
            if target is not None:
                return Intent(
                    action.kind, target=target, title=action.title, description=action.description
                )
    return None


def _clause_target(text: str) -> Target | None:
    """The task a descriptive clause is about, or None when it says something else."""
    other = _parse_clean(clean_message(text), _CLAUSE_RULES)
    if other.kind in TOOL_FOR_KIND and not other.target.ref:
        return other.target
    if other.kind not in ("unknown", "again", "offer"):
        return None  # "add X, then mark it done" is two requests, not one
    return loose_target(text) or (Target(query=text) if keywords(text) else None)


# Between two requests of one message: "Add 'A'. Then add 'B' too.", "add X and also add Y".
# Each alternative starts after a non-space, so a run of spaces is scanned once.
_SEQUENCE_BREAK = re.compile(
    r"(?<!\s)\s*+[.;!?](?=\s)\s*+(?P<joined>(?:(?:and|also|then|plus)\s++)*+)"
    r"|(?<!\s),?\s++(?P<also>(?:and\s++)?(?:then|also)\s++)",
    FLAGS,
)
_SEQUENCE_MAX_PARTS = 10


def _sequence_intent(text: str) -> Intent | None:
    """Several add requests in one message, each read on its own; a part after "also" or
    "and" with no verb of its own ("add milk, and also eggs") is one more title."""
    breaks = list(islice(_SEQUENCE_BREAK.finditer(text), _SEQUENCE_MAX_PARTS))
    if not breaks or len(breaks) >= _SEQUENCE_MAX_PARTS:
        return None
    starts = [0, *(b.end() for b in breaks)]
    ends = [*(b.start() for b in breaks), len(text)]
    joined = [False, *(bool(b["joined"] or b["also"]) for b in breaks)]
    tasks: list[NewTask] = []
    for start, end, after_joiner in zip(starts, ends, joined, strict=True):
        part = clean_message(text[start:end])
        if not part.text:
            continue
        intent = _parse_clean(part, _CLAUSE_RULES)
        if intent.kind == "add":
            tasks.extend(intent.new_tasks)
        elif tasks and after_joiner and intent.kind in ("offer", "unknown"):
            extra = split_description(part.text)
            if not extra.title:
                return None
            tasks.append(extra)
        else:
            return None  # "add X. Then show my list" is two kinds of request
    return Intent("add", new_tasks=tuple(dict.fromkeys(tasks))) if len(tasks) > 1 else None


_RULES = (
    cancel_intent,
    undo_intent,
    confirm_intent,
    _compound_intent,
    _sequence_intent,
    update_intent,
    delete_intent,
    add_intent,
    complete_intent,
    remind_intent,
    _need_intent,
    social_intent,
    list_intent,
    follow_up_intent,
    correction_intent,
    report_intent,
    cue_intent,
    offer_intent,
)


# Clauses of a compound message are parsed without splitting them again.
_CLAUSE_RULES = tuple(rule for rule in _RULES if rule not in (_compound_intent, _sequence_intent))


def _parse_clean(
    cleaned: Cleaned, rules: Sequence[Callable[[str], Intent | None]] = _RULES
) -> Intent:
    if not cleaned.text:
        return Intent(cleaned.social or "unknown")
    for rule in rules:
        intent = rule(cleaned.text)
        if intent is not None and intent.kind == "offer":
            # "buy cat food" is a note to self; "can you book a flight?" gets asked about.
            general = cleaned.text.split()[0].lower() in GENERAL_VERBS
            return Intent("offer", new_tasks=intent.new_tasks, soft=cleaned.request or general)
        if intent is not None:
            return intent
    if cleaned.correction:
        # "actually, walk the cat" right after "add walk the dog"; checked against history.
        return Intent("correct", title=cleaned.text, soft=True)
    return Intent(cleaned.social) if cleaned.social else UNKNOWN


def parse_intent(message: str) -> Intent:
    """Map one user message to an Intent (pure function, no history needed)."""
    return _parse_clean(clean_message(message))
