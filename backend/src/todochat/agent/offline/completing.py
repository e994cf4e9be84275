"""Rules for completing tasks: commands ("mark 3 done", "tick them all off"), reports ("I
called mom", "the plants are watered"), terse chat ("5 done") and a status or a check mark
("taxes: done", "✔ water the lawn")."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.cues import NOT_A_COMMAND, PERSON, QUESTION_HEAD
from todochat.agent.offline.intent import Intent, Target
from todochat.agent.offline.lexicon import CHECK_MARK, IRREGULAR_PAST, NOT_COMPLETION, NOT_REPORTED
from todochat.agent.offline.matching import keywords
from todochat.agent.offline.targets import parse_target

_STATUS_DONE = (
    r"done|finished|complete|completed|sorted|ticked off|checked off|crossed off|handled|"
    r"dealt with|taken care of|all done|done and dusted|finito|paid|booked|sent|fixed"
)
_DONE_WORD = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked off|resolved)"
_COMPLETE = (
    re.compile(
        rf"^(?:mark|set|flag)\s++(?P<target>.+?)(?<!\s)\s++(?:as\s++|to\s++)?{_DONE_WORD}"
        r"(?:\s++now)?$",
        FLAGS,
    ),
    re.compile(r"^(?:complete|check off|tick off|cross off|strike off)\s++(?P<target>.+)$", FLAGS),
    re.compile(
        r"^(?:check|tick|cross)\s++(?P<target>.+?)(?<!\s)\s++off(?:\s++(?:my|the)\s++list)?$",
        FLAGS,
    ),
    re.compile(
        r"^(?:i'?m|i am|we'?re)?\s*(?:all\s+)?(?:done|finished|through)\s+with\s+(?P<target>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)(?:\s++(?:is|are|has been|have been|was|were)|\s*+'s)\s++"
        r"(?:(?:now|all|already|finally|also)\s++)*(?:done|complete|completed|finished|"
        r"taken care of|sorted|handled|dealt with)(?:\s++(?:now|too|as well))?$",
        FLAGS,
    ),
    re.compile(
        r"^(?:i(?:'ve|\s++have)?\s++)?(?:(?:just|finally|already)\s++)*+(?:finished|completed|done|"
        r"did)\s*[:\-]?\s+(?P<target>.+)$",
        FLAGS,
    ),
    # Terse chat style without a verb: "5 done", "tasks 4 and 5 finished".
    re.compile(
        rf"^(?P<target>(?:tasks?\s*+)?#?\d++(?:\s*+(?:,|and|&)\s*+#?\d++)*+)\s*+[:\-]?\s*+"
        rf"{_DONE_WORD}$",
        FLAGS,
    ),
    # A status written after the task: "taxes: done", "gym — finished", "bill - done ✅".
    re.compile(
        r"^(?P<target>.+?)(?<![\s:=\-\u2014\u2013])\s*+(?::|=|--?|\u2014|\u2013|(?<=\s)to\s)\s*+"
        rf"(?:{_STATUS_DONE})(?:\s*+{CHECK_MARK})?$",
        FLAGS,
    ),
    # A checklist: "✔ water the lawn", "[x] call mom", "laundry ✔ dishes ✔".
    re.compile(rf"^(?:[\-*\u2022]\s*+)?(?:{CHECK_MARK}|\[x\]|\(x\))\s*+(?P<target>.+)$", FLAGS),
    re.compile(rf"^(?P<target>.+?)(?<!\s)\s*+{CHECK_MARK}$", FLAGS),
)
# "finish/close X" is only a completion when X is an id or "it"; "finish the report" alone is
# too ambiguous (it reads like a new task just as well).
_COMPLETE_ID_ONLY = re.compile(r"^(?:finish|close|resolve)\s+(?P<target>.+)$", FLAGS)


# "I called mom" / "bought the groceries": a past-tense verb that heads the message.
_PAST_TENSE = re.compile(
    r"^(?:i(?:'ve|\s++have)?\s++)?(?:(?:just|finally|already)\s++)*(?P<verb>[a-z]++)\s++"
    r"(?P<rest>.+)$",
    FLAGS,
)
# "the plants are watered", "groceries bought", "the dentist has been called": the object
# first, then the participle of the title's verb: what follows the subject (the pattern below).
# "now", "already" and "finally" can stand before the verb, be the verb, or follow it: each run
# of them is bounded (five), or every way of sharing a long run between the three would be tried.
# So what follows the subject has at most 22 words, and only the last 22 words are searched.
_REPORT = re.compile(
    r"(?<!\s)\s++(?:(?:is|are|was|were|has been|have been|had been|been|got|now|"
    r"all|already|finally|just|also)\s++){0,5}(?P<verb>[a-z]++)"
    r"(?:\s++(?:out|off|up|down|away|back|in|over))?+"
    r"(?:\s++(?:now|too|already|as well|at last|"
    r"finally|today|yesterday|earlier|this morning)){0,5}+$",
    FLAGS,
)
_REPORT_MAX_WORDS = 22


# "completed tasks" asks for a list; "finished all my tasks" is about every task.
_LIST_NOUNS = re.compile(
    r"^(?:my\s++|the\s++)*+(?:tasks|ones|items|todos|to-?dos|stuff|things|list)$", FLAGS
)
# "did I finish the report?", "is task 3 done?": questions, never an action.
_YES_NO_QUESTION = re.compile(
    r"^(?:did|have|has|is|are|was|were|do|does|am)\s+(?:i|we|you|it|that|this|the|my|task|#?\d)",
    FLAGS,
)


def complete_intent(text: str) -> Intent | None:
    if _YES_NO_QUESTION.match(text):
        return None
    for pattern in _COMPLETE:
        match = pattern.match(text)
        if not match:
            continue
        if _LIST_NOUNS.match(match["target"]):
            return None  # "completed tasks" asks for a list
        target = parse_target(match["target"])
        if target.every or not QUESTION_HEAD.match(match["target"]):
            return Intent("complete", target=target)
    match = _COMPLETE_ID_ONLY.match(text)
    if match:
        target = parse_target(match["target"])
        if target.ids or target.ref or target.ordinal or target.every:
            return Intent("complete", target=target)
    return _past_tense_intent(text)


def _is_past_tense(word: str) -> bool:
    lowered = word.lower()
    if lowered in NOT_COMPLETION:
        return False
    return lowered in IRREGULAR_PAST or (len(lowered) > 4 and lowered.endswith("ed"))


def _past_tense_intent(text: str) -> Intent | None:
    match = _PAST_TENSE.match(text)
    if not match or not _is_past_tense(match["verb"]) or match["rest"].lower().startswith("to "):
        return None  # "I've got to renew X" is a plan, not a report
    # The verb stays in the query: "walked the dog" must match the title "Walk the dog".
    return Intent("complete", target=Target(query=f"{match['verb']} {match['rest']}"))


def report_intent(text: str) -> Intent | None:
    """ "the plants are watered", "groceries bought": a statement that something got done."""
    words = text.rsplit(None, _REPORT_MAX_WORDS)
    tail = len(words[0]) if len(words) > _REPORT_MAX_WORDS else 0
    # The first place, after at least one character of subject, where the rest is a report.
    match = _REPORT.search(text, max(tail, 1))
    if not match or PERSON.match(text) or NOT_A_COMMAND.search(text):
        return None
    verb = match["verb"].lower()
    reports_done = verb in ("done", "finished", "completed") or (
        (verb in IRREGULAR_PAST or (len(verb) > 4 and verb.endswith("ed")))
        and verb not in NOT_REPORTED
    )
    if reports_done and keywords(text[: match.start()]):
        return Intent("complete", target=Target(query=text), soft=True)
    return None
