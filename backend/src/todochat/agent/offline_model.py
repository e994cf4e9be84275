"""Deterministic, offline stand-in for an LLM that drives the todo tools.

``OfflineModel`` implements the OpenAI Agents SDK ``Model`` interface so the chatbot works
without an API key.  It is *stateless*: on every call it re-reads the conversation handed to it
by the Runner, parses the latest user message into an ``Intent`` with precompiled regexes, looks
at the tool calls already made in this turn, and decides the next step: more tool calls, or the
final reply.  Nothing but the uuid-based ids is random, so a given history always produces the
same answer.

Tool contract (names must match the tools given to the agent):
    add_task(title, description?)           -> {task_id, status: "created", title}
    list_tasks(status?="all"|"pending"|"completed") -> [{id, title, description, completed}]
    complete_task(task_id)                  -> {task_id, status: "completed", title}
    delete_task(task_id)                    -> {task_id, status: "deleted", title}
    update_task(task_id, title?, description?) -> {task_id, status: "updated", title}
    errors                                  -> {"error": "Task 7 not found"}
"""

from __future__ import annotations

import ast
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
    Usage,
)
from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

__all__ = ["Intent", "OfflineModel", "Target", "decide", "parse_intent", "parse_tool_output"]

Kind = Literal[
    "add",
    "list",
    "complete",
    "delete",
    "update",
    "again",
    "cancel",
    "greet",
    "help",
    "thanks",
    "unknown",
]
ListStatus = Literal["all", "pending", "completed"]

ADD, LIST, COMPLETE, DELETE, UPDATE = (
    "add_task",
    "list_tasks",
    "complete_task",
    "delete_task",
    "update_task",
)
_TOOL_FOR_KIND: dict[str, str] = {"complete": COMPLETE, "delete": DELETE, "update": UPDATE}
_KIND_FOR_TOOL: dict[str, Kind] = {COMPLETE: "complete", DELETE: "delete", UPDATE: "update"}
# Safety valve: a confused plan must never make the Runner loop until max_turns.
_MAX_CALLS_PER_TURN = 12


# --------------------------------------------------------------------------------------------
# Intent model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Which task(s) a complete/delete/update request is about.

    Exactly one of the three is meaningful: explicit ids, a reference to the task the
    conversation last touched ("it", "that one"), or title words to look up via list_tasks.
    """

    ids: tuple[int, ...] = ()
    ref: bool = False
    query: str = ""


@dataclass(frozen=True)
class NewTask:
    title: str
    description: str | None = None


@dataclass(frozen=True)
class Intent:
    kind: Kind
    new_tasks: tuple[NewTask, ...] = ()
    status: ListStatus = "all"
    target: Target = field(default_factory=Target)
    title: str | None = None
    description: str | None = None


UNKNOWN = Intent("unknown")


# --------------------------------------------------------------------------------------------
# Message clean-up
# --------------------------------------------------------------------------------------------

_FLAGS = re.IGNORECASE
_QUOTE_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_TRAILING_PUNCT = re.compile(r"[\s.!?\u2026]+$")
# Fillers are stripped from the front so "ok great, actually delete it" reads as "delete it".
# Social openers are remembered: if nothing else is understood we still greet/thank back.
_SOCIAL_FILLER = re.compile(
    r"^(?P<word>thanks|thank you|thx|hi there|hey there|hello there|hi|hello|hey|hiya|howdy|"
    r"good (?:morning|afternoon|evening))\b[\s,:;!.\-]*",
    _FLAGS,
)
_PLAIN_FILLER = re.compile(
    r"^(?:ok(?:ay)?|alright|all right|great|cool|nice|perfect|awesome|actually|oh|oops|um+|uh+|"
    r"well|so|and|also|then|now|hmm+|yes|yeah|yep|no|nope|never ?mind|nevermind|wait|sorry|"
    r"please|pls|kindly|can you|could you|would you|will you|can u|could u|"
    r"i'?d like you to|i want you to|i would like you to|go ahead and|just)\b[\s,:;!.\-]*",
    _FLAGS,
)
_TRAILING_FILLER = re.compile(
    r"(?:[\s,]+(?:please|pls|thanks|thank you|thx|for me))+$",
    _FLAGS,
)


@dataclass(frozen=True)
class Cleaned:
    text: str
    social: Kind | None  # "greet"/"thanks" when the message opened with one


def clean_message(message: str) -> Cleaned:
    """Normalise quotes/whitespace and strip fillers that carry no intent."""
    text = " ".join(message.translate(_QUOTE_MAP).split())
    text = _TRAILING_PUNCT.sub("", text)
    social: Kind | None = None
    while True:
        match = _SOCIAL_FILLER.match(text) or _PLAIN_FILLER.match(text)
        rest = text[match.end() :].strip() if match else ""
        if not match or not rest:
            break
        word = match.groupdict().get("word")
        if word:
            social = "thanks" if word.lower().startswith("th") else "greet"
        text = rest
    text = _TRAILING_PUNCT.sub("", _TRAILING_FILLER.sub("", text))
    return Cleaned(text, social)


# --------------------------------------------------------------------------------------------
# Titles and descriptions
# --------------------------------------------------------------------------------------------

_LIST_SUFFIX = re.compile(
    r"\s+(?:to|on|onto|in|into|from|off(?: of)?|out of)\s+(?:my|the|our)\s+"
    r"(?:to-?do\s+|todo\s+|task\s+|tasks\s+)?(?:list|tasks|todos?|to-?dos?)$",
    _FLAGS,
)
_DESC_INLINE = re.compile(
    r"(?:\s*[,;\-\u2014\u2013]\s*|\s+)(?:with\s+(?:a\s+|the\s+)?(?:description|desc|details|notes?)(?:\s+of)?"
    r"|(?:description|desc|details|notes?)\s*:|(?:description|desc)\s+is)\s*:?\s*(?P<desc>.+)$",
    _FLAGS,
)
_DESC_PARENS = re.compile(
    r"\s*\((?:(?:description|desc|details|notes?)\s*:\s*)?(?P<desc>[^()]+)\)$", _FLAGS
)
_DESC_DASH = re.compile(r"\s+(?:[\u2014\u2013]|--?)\s+(?P<desc>.+)$")
_QUOTED_HEAD = re.compile(r"""^(?P<q>["'])(?P<inner>.+?)(?P=q)(?P<rest>.*)$""")
_DESC_LEAD = re.compile(
    r"^[\s,;:\-\u2014\u2013(]*(?:with\s+(?:a\s+|the\s+)?(?:description|desc|details|notes?)"
    r"(?:\s+of)?|(?:description|desc|details|notes?)\s*:)?\s*:?\s*",
    _FLAGS,
)
_LEADING_CONNECTOR = re.compile(r"^(?:called|named|titled|that says|saying)\s+", _FLAGS)


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text.strip('"`').strip()


def clean_title(raw: str) -> str:
    """Turn the user's wording into a tidy task title ("buy milk." -> "Buy milk")."""
    text = _LIST_SUFFIX.sub("", raw.strip())
    text = _LEADING_CONNECTOR.sub("", text)
    text = _strip_quotes(_TRAILING_PUNCT.sub("", text))
    text = _TRAILING_PUNCT.sub("", text).rstrip(",;:-\u2014\u2013 ")
    # SHOUTED messages should not produce SHOUTED tasks.
    if text.isupper() and len(text) > 3:
        text = text.lower()
    return text[:1].upper() + text[1:]


def clean_description(raw: str) -> str | None:
    text = _strip_quotes(_LIST_SUFFIX.sub("", raw.strip()).rstrip(")"))
    text = _TRAILING_PUNCT.sub("", text).strip()
    return text[:1].upper() + text[1:] if text else None


def split_description(raw: str) -> NewTask:
    """Separate "title with description X" / "title (X)" / "'title' - X" into two fields."""
    raw = _LIST_SUFFIX.sub("", raw.strip())
    quoted = _QUOTED_HEAD.match(raw)
    if quoted:
        rest = _LIST_SUFFIX.sub("", quoted["rest"].strip())
        rest = _DESC_LEAD.sub("", rest, count=1).rstrip(")")
        return NewTask(clean_title(quoted["inner"]), clean_description(rest) if rest else None)
    for pattern in (_DESC_INLINE, _DESC_PARENS, _DESC_DASH):
        match = pattern.search(raw)
        if match and match.start() > 0:
            return NewTask(clean_title(raw[: match.start()]), clean_description(match["desc"]))
    return NewTask(clean_title(raw))


# --------------------------------------------------------------------------------------------
# Targets ("task 4", "3, 4 and 5", "it", "the groceries one")
# --------------------------------------------------------------------------------------------

_ID_FILLER = re.compile(
    r"\b(?:tasks?|numbers?|no|ids?|items?|and|plus|the|also|too|as well|both|&)\b|[#,:&.]", _FLAGS
)
_DIGITS_ONLY = re.compile(r"^(?:\d+\s*)+$")
_NUMBER = re.compile(r"\d+")
_PRONOUN = re.compile(
    r"^(?:it|its|that|this|them|that one|this one|that task|this task|the last one|the last task|"
    r"the same one|same one|the previous one|the one i just (?:added|created|made|mentioned)|"
    r"the (?:new|latest) one)$",
    _FLAGS,
)
_TARGET_TRIM = re.compile(
    r"(?:\s+(?:title|name|description)|'s)$|^(?:my|the|a)\s+(?=task|item|todo)", _FLAGS
)


def parse_target(raw: str) -> Target:
    text = _LIST_SUFFIX.sub("", raw.strip()).strip()
    text = _TARGET_TRIM.sub("", text).strip()
    if _PRONOUN.match(text):
        return Target(ref=True)
    id_text = _ID_FILLER.sub(" ", text).strip()
    if id_text and _DIGITS_ONLY.match(id_text):
        return Target(ids=tuple(dict.fromkeys(int(n) for n in _NUMBER.findall(id_text))))
    return Target(query=_strip_quotes(text))


# --------------------------------------------------------------------------------------------
# Intent rules.  Order matters: specific verbs (rename, delete, mark) are tried before the
# loose "I need to ..." add phrasing and before list questions.
# --------------------------------------------------------------------------------------------

_UPDATE_DESC = (
    re.compile(
        r"^(?:change|update|edit|modify|set|replace)\s+(?:the\s+)?(?:description|desc|details|"
        r"notes?)\s+(?:of|for|on)\s+(?P<target>.+?)\s+(?:to|as|with)\s*:?\s+(?P<desc>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:change|update|edit|modify|set)\s+(?P<target>.+?)(?:'s)?\s+(?:description|desc|"
        r"details)\s+(?:to|as)\s*:?\s+(?P<desc>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:add|put|attach|give|set|write)\s+(?:a\s+|an\s+|the\s+)?(?:description|desc|"
        r"details|note)\s+(?:to|for|on)\s+(?P<target>.+?)\s*(?::|\s-|\u2014|\u2013|saying|"
        r"that says)\s*(?P<desc>.+)$",
        _FLAGS,
    ),
)
_UPDATE_TITLE = (
    re.compile(
        r"^(?:change|update|edit|modify|set)\s+(?:the\s+)?(?:title|name)\s+(?:of|for|on)\s+"
        r"(?P<target>.+?)\s+to\s+(?:say\s+|read\s+)?(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle|re-name)\s+(?P<target>.+?)\s+(?:to|as|into)\s+(?P<title>.+)$", _FLAGS
    ),
    re.compile(
        r"^(?:change|update|edit|modify)\s+(?P<target>.+?)(?:'s)?(?:\s+(?:title|name))?\s+"
        r"(?:to\s+(?:say|read)|so\s+(?:that\s+)?it\s+(?:says|reads)|to|into)\s*:?\s+(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:change|update|edit|rename)\s+(?P<target>(?:task\s*)?#?\d+|it|that)\s*[:\-\u2014]\s*"
        r"(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle)\s+(?P<target>(?:task\s*)?#?\d+|it|that|this|that one|this one)"
        r"\s+(?!to\b|as\b)(?P<title>.+)$",
        _FLAGS,
    ),
)
_DELETE = (
    re.compile(
        r"^(?:delete|remove|erase|trash|scrap|drop|discard|nuke|ditch|get rid of|cancel|"
        r"forget about|forget(?!\s+to\b))\s+(?P<target>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:take|cross)\s+(?P<target>.+?)\s+(?:off|out)\s+(?:of\s+)?(?:my|the)\s+(?:to-?do\s+)?list$",
        _FLAGS,
    ),
)
_DONE_WORD = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked off|resolved)"
_COMPLETE = (
    re.compile(
        rf"^(?:mark|set|flag)\s+(?P<target>.+?)\s+(?:as\s+)?{_DONE_WORD}(?:\s+now)?$", _FLAGS
    ),
    re.compile(r"^(?:complete|check off|tick off|cross off|strike off)\s+(?P<target>.+)$", _FLAGS),
    re.compile(r"^(?:check|tick)\s+(?P<target>.+?)\s+off$", _FLAGS),
    re.compile(
        r"^(?:i'?m|i am|we'?re)?\s*(?:all\s+)?(?:done|finished|through)\s+with\s+(?P<target>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?P<target>.+?)\s*(?:\s(?:is|are|has been|have been|was|were)|'s)\s+"
        r"(?:(?:now|all|already|finally|also)\s+)*(?:done|complete|completed|finished|"
        r"taken care of|sorted|handled|dealt with)(?:\s+(?:now|too|as well))?$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:i(?:'ve|\s+have)?\s+)?(?:(?:just|finally|already)\s+)*(?:finished|completed|done|"
        r"did)\s*[:\-]?\s+(?P<target>.+)$",
        _FLAGS,
    ),
    # Terse chat style without a verb: "5 done", "tasks 4 and 5 finished".
    re.compile(
        rf"^(?P<target>(?:tasks?\s*)?#?\d+(?:\s*(?:,|and|&)\s*#?\d+)*)\s*[:\-]?\s*{_DONE_WORD}$",
        _FLAGS,
    ),
)
# "finish/close X" is only a completion when X is an id or "it"; "finish the report" alone is
# too ambiguous (it reads like a new task just as well).
_COMPLETE_ID_ONLY = re.compile(r"^(?:finish|close|resolve)\s+(?P<target>.+)$", _FLAGS)
_QUESTION_HEAD = re.compile(r"^(?:what|which|anything|everything|who|how|is|are|any)\b", _FLAGS)

# "I called mom" / "bought the groceries": a past-tense verb that heads the message.
_PAST_TENSE = re.compile(
    r"^(?:i(?:'ve|\s+have)?\s+)?(?:(?:just|finally|already)\s+)*(?P<verb>[a-z]+)\s+(?P<rest>.+)$",
    _FLAGS,
)
_IRREGULAR_PAST: dict[str, str] = {
    "bought": "buy",
    "paid": "pay",
    "fed": "feed",
    "wrote": "write",
    "written": "write",
    "made": "make",
    "did": "do",
    "went": "go",
    "sent": "send",
    "took": "take",
    "taken": "take",
    "got": "get",
    "ate": "eat",
    "met": "meet",
    "ran": "run",
    "sang": "sing",
    "spoke": "speak",
    "gave": "give",
    "given": "give",
    "told": "tell",
    "sold": "sell",
    "found": "find",
    "built": "build",
    "brought": "bring",
    "caught": "catch",
    "taught": "teach",
    "drove": "drive",
    "driven": "drive",
    "rode": "ride",
    "swept": "sweep",
    "saw": "see",
    "seen": "see",
    "drew": "draw",
    "hung": "hang",
    "spent": "spend",
    "lent": "lend",
    "won": "win",
    "chose": "choose",
    "wore": "wear",
    "threw": "throw",
    "thrown": "throw",
    "flew": "fly",
    "kept": "keep",
    "held": "hold",
    "sat": "sit",
    "slept": "sleep",
    "swam": "swim",
    "understood": "understand",
    "froze": "freeze",
    "broke": "break",
    "began": "begin",
    "learnt": "learn",
    "left": "leave",
    "mailed": "mail",
    "bound": "bind",
    "dug": "dig",
}
# Past tenses that report something other than finishing the task.
_NOT_COMPLETION = frozenset(
    [
        "need",
        "needed",
        "feed",
        "seed",
        "speed",
        "bleed",
        "breed",
        "proceed",
        "succeed",
        "indeed",
        "embed",
        "bed",
        "red",
        "shed",
        "wed",
        "started",
        "wanted",
        "tried",
        "planned",
        "forgot",
        "forgotten",
        "decided",
        "hoped",
        "liked",
        "loved",
        "hated",
        "added",
        "deleted",
        "removed",
        "created",
        "listed",
        "updated",
        "renamed",
        "changed",
        "marked",
        "missed",
        "postponed",
        "delayed",
        "skipped",
        "cancelled",
        "canceled",
        "asked",
        "wondered",
        "said",
        "used",
        "noticed",
        "heard",
        "felt",
        "thought",
    ]
)

_ADD_VERB = re.compile(
    r"^(?:add|put|jot down|jot|note down|write down|pop|stick|throw)\b\s*(?P<rest>.*)$", _FLAGS
)
# Verbs that only mean "add" when followed by a task noun ("make a task to ...").
_ADD_VERB_NEEDS_NOUN = re.compile(
    r"^(?:create|make|new|set up|log|record|start|insert)\s+(?P<rest>(?:(?:a|an|"
    r"one|another|new|the)\s+)*(?:task|todo|to-do|item|reminder|entry|note)s?\b.*)$",
    _FLAGS,
)
_ADD_NOUN_HEAD = re.compile(
    r"^(?:(?:a|an|one|another|this|the following|these|some|two|three|four|few|\d+)\s+)?"
    r"(?:new\s+)?(?:(?:tasks?|todos?|to-dos?|items?|reminders?|entry|entries|notes?)\b)?\s*"
    r"(?:(?:called|named|titled|that says|saying|to|for|about)\b|[:\-\u2014])?\s*",
    _FLAGS,
)
_ADD_LIST_HEAD = re.compile(
    r"^(?:to|on|onto)\s+(?:my|the)\s+(?:to-?do\s+|task\s+)?(?:list|tasks)\s*:?\s*", _FLAGS
)
_ADD_PLURAL = re.compile(
    r"^(?:the following|these|some|two|three|four|few|several|\d+)\b|^tasks\b", _FLAGS
)
_ADD_NOUN_LED = re.compile(
    r"^(?:new\s+)?(?:task|todo|to-do|reminder|note to self|note|item)\s*[:\-\u2014]\s*"
    r"(?P<title>.+)$",
    _FLAGS,
)
_ADD_NEED = re.compile(
    r"^(?:remind me (?:to|about|that i (?:need|have) to)|remind me|"
    r"(?:don'?t|do not) (?:let me )?forget (?:to|about)|remember (?:to|that i (?:need|have) to)|"
    r"i (?:need|have|want|got) to remember to|"
    r"(?:i\s+|we\s+)?(?:(?:really|still|also|definitely)\s+)*(?:need to|have to|must|should|"
    r"gotta|got to|'ve got to|ought to|'ll have to|will have to|'d better|had better|better))"
    r"\s+(?:(?:really|also|definitely|still)\s+)*(?P<title>.+)$",
    _FLAGS,
)
_COMMAND_HEAD = re.compile(
    r"^(?:add|create|delete|remove|erase|mark|complete|check off|rename|change|update|edit|"
    r"list|show|cancel)\b",
    _FLAGS,
)

_HELP = re.compile(
    r"\b(?:help|what can you do|what can i (?:ask|say|do|tell)|what do you do|what are you|"
    r"who are you|how does (?:this|it) work|how do (?:i|you) (?:use|work)|commands|"
    r"capabilities|what are your)\b",
    _FLAGS,
)
_THANKS = re.compile(
    r"^(?:thanks|thank you|thx|ty|cheers|much appreciated|appreciate it|great|perfect|awesome|"
    r"cool|nice|ok|okay|got it|good|sounds good|excellent|wonderful)\b",
    _FLAGS,
)
_GREET = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day))\b", _FLAGS
)

_LIST_TOPIC = re.compile(
    r"\b(?:tasks?|to-?dos?|list|plate|agenda|left|pending|remaining|remains?|outstanding|open|"
    r"incomplete|unfinished|done|complete|completed|finished|everything|anything|still)\b",
    _FLAGS,
)
_LIST_ASK = re.compile(
    r"^(?:show|list|display|see|view|get|give|tell|print|what|what's|whats|which|anything|any|"
    r"everything|do i|have i|did i|is there|are there|how many|my|all|pending|completed|"
    r"finished|done|open|remaining|outstanding|check|read)\b",
    _FLAGS,
)
_PENDING_WORDS = re.compile(
    r"\b(?:not (?:yet )?(?:done|complete|completed|finished)|incomplete|unfinished|uncompleted|"
    r"undone|pending|left|remaining|remains?|outstanding|open|still|to go|active|due|on my plate|"
    r"unchecked|todo left)\b",
    _FLAGS,
)
_COMPLETED_WORDS = re.compile(
    r"\b(?:completed?|done|finished|checked off|ticked off|accomplished|achieved|crossed off)\b",
    _FLAGS,
)
_FOLLOW_UP_FILLER = re.compile(
    r"\b(?:and|also|plus|same|for|with|what|how|about|that|this|one|too|as|well|tasks?|"
    r"numbers?|the|i mean|mean|it's|it is|no)\b|[#,:&]",
    _FLAGS,
)


def _update_intent(text: str) -> Intent | None:
    for pattern in _UPDATE_DESC:
        match = pattern.match(text)
        if match:
            return Intent(
                "update",
                target=parse_target(match["target"]),
                description=clean_description(match["desc"]),
            )
    for pattern in _UPDATE_TITLE:
        match = pattern.match(text)
        if match:
            new = split_description(match["title"])
            return Intent(
                "update",
                target=parse_target(match["target"]),
                title=new.title,
                description=new.description,
            )
    return None


def _delete_intent(text: str) -> Intent | None:
    for pattern in _DELETE:
        match = pattern.match(text)
        if match:
            return Intent("delete", target=parse_target(match["target"]))
    return None


def _complete_intent(text: str) -> Intent | None:
    for pattern in _COMPLETE:
        match = pattern.match(text)
        if match and not _QUESTION_HEAD.match(match["target"]):
            return Intent("complete", target=parse_target(match["target"]))
    match = _COMPLETE_ID_ONLY.match(text)
    if match:
        target = parse_target(match["target"])
        if target.ids or target.ref:
            return Intent("complete", target=target)
    return _past_tense_intent(text)


def _is_past_tense(word: str) -> bool:
    lowered = word.lower()
    if lowered in _NOT_COMPLETION:
        return False
    return lowered in _IRREGULAR_PAST or (len(lowered) > 4 and lowered.endswith("ed"))


def _past_tense_intent(text: str) -> Intent | None:
    match = _PAST_TENSE.match(text)
    if not match or not _is_past_tense(match["verb"]):
        return None
    # The verb stays in the query: "walked the dog" must match the title "Walk the dog".
    return Intent("complete", target=Target(query=f"{match['verb']} {match['rest']}"))


def _add_titles(rest: str) -> Intent | None:
    plural = bool(_ADD_PLURAL.match(rest))
    rest = _ADD_LIST_HEAD.sub("", rest.strip())
    rest = _ADD_NOUN_HEAD.sub("", rest, count=1).strip()
    rest = _ADD_LIST_HEAD.sub("", rest)
    if not rest:
        return None
    separators = r"\s*(?:;|\n|,\s*and\s+|,|\s+and\s+)\s*" if plural else r"\s*(?:;|\n)\s*"
    parts = [p for p in re.split(separators, rest) if p.strip()]
    tasks = tuple(t for t in (split_description(p) for p in parts) if t.title)
    return Intent("add", new_tasks=tasks) if tasks else None


def _add_intent(text: str) -> Intent | None:
    match = _ADD_NOUN_LED.match(text)
    if match:
        return _add_titles(match["title"])
    match = _ADD_VERB.match(text) or _ADD_VERB_NEEDS_NOUN.match(text)
    if match:
        return _add_titles(match["rest"])
    return None


def _need_intent(text: str) -> Intent | None:
    """ "I need to X" / "remind me to X": usually a new task, unless X is itself a command."""
    match = _ADD_NEED.match(text)
    if not match:
        return None
    title = match["title"]
    while (inner := _ADD_NEED.match(title)) is not None:  # "need to remember to pay bills"
        title = inner["title"]
    if _COMMAND_HEAD.match(title):
        nested = parse_intent(title)
        if nested.kind != "unknown":
            return nested
    return _add_titles(title)


def _list_intent(text: str) -> Intent | None:
    if not (_LIST_TOPIC.search(text) and _LIST_ASK.match(text)):
        return None
    status: ListStatus = "all"
    if _PENDING_WORDS.search(text):
        status = "pending"
    elif _COMPLETED_WORDS.search(text):
        status = "completed"
    return Intent("list", status=status)


def _follow_up_intent(text: str) -> Intent | None:
    """Bare ids ("7", "I mean task 7", "and that one too: 7"): same action as before, on 7."""
    rest = _FOLLOW_UP_FILLER.sub(" ", text).strip()
    if rest and _DIGITS_ONLY.match(rest):
        return Intent("again", target=Target(ids=tuple(int(n) for n in _NUMBER.findall(rest))))
    return None


# Checked first: "forget it" must never reach the delete rule as "forget <it>".
_CANCEL = re.compile(
    r"^(?:never ?mind|nevermind|forget (?:it|that|about it)|no|nope|nothing|none|neither|"
    r"cancel|stop|abort|leave it|skip it|don'?t bother)(?:\s+(?:then|thanks|please))?$",
    _FLAGS,
)


def _cancel_intent(text: str) -> Intent | None:
    return Intent("cancel") if _CANCEL.match(text) else None


def _social_intent(text: str) -> Intent | None:
    if _HELP.search(text):
        return Intent("help")
    if _GREET.match(text):
        return Intent("greet")
    if _THANKS.match(text):
        return Intent("thanks")
    return None


_RULES = (
    _cancel_intent,
    _update_intent,
    _delete_intent,
    _add_intent,
    _complete_intent,
    _need_intent,
    _social_intent,
    _list_intent,
    _follow_up_intent,
)


def parse_intent(message: str) -> Intent:
    """Map one user message to an Intent (pure function, no history needed)."""
    cleaned = clean_message(message)
    if not cleaned.text:
        return Intent(cleaned.social or "unknown")
    for rule in _RULES:
        intent = rule(cleaned.text)
        if intent is not None:
            return intent
    return Intent(cleaned.social) if cleaned.social else UNKNOWN


# --------------------------------------------------------------------------------------------
# Fuzzy title matching
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "my",
        "our",
        "your",
        "this",
        "that",
        "one",
        "ones",
        "task",
        "tasks",
        "item",
        "items",
        "todo",
        "to",
        "do",
        "list",
        "about",
        "for",
        "of",
        "to",
        "on",
        "in",
        "at",
        "with",
        "i",
        "me",
        "it",
        "is",
        "are",
        "was",
        "please",
        "entry",
        "reminder",
        "thing",
        "called",
        "named",
        "titled",
        "just",
        "all",
    ]
)
_MIN_COVERAGE = 0.6  # share of the user's words a title must contain to count as a match


def _stem(word: str) -> str:
    """Crude but symmetric stemmer: applied to both sides, so only consistency matters."""
    word = _IRREGULAR_PAST.get(word, word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif (len(word) > 3 and word.endswith("ed") and word[-3] != "e") or (
        len(word) > 4 and word.endswith("es") and word[-3] in "sxz"
    ):
        word = word[:-2]  # "called" -> "call", "boxes" -> "box"; not "need" -> "ne"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "shopp" -> "shop", "dropp" -> "drop"
    if len(word) > 2 and word.endswith("e"):
        word = word[:-1]
    return word


def keywords(text: str) -> frozenset[str]:
    words = _WORD.findall(text.lower().replace("'s", ""))
    return frozenset(_stem(w) for w in words if w not in _STOPWORDS)


@dataclass(frozen=True)
class TaskView:
    id: int
    title: str
    completed: bool = False


def match_tasks(query: str, tasks: Sequence[TaskView], prefer_pending: bool) -> list[TaskView]:
    """Tasks whose title best covers the query words; several means "ask the user"."""
    wanted = keywords(query)
    if not wanted:
        return []
    scored: list[tuple[float, TaskView, bool]] = []
    for task in tasks:
        have = keywords(task.title)
        scored.append((len(wanted & have) / len(wanted), task, have == wanted))
    best = max((s for s, _, _ in scored), default=0.0)
    if best < _MIN_COVERAGE:
        return []
    candidates = [(t, exact) for s, t, exact in scored if s == best]
    if prefer_pending and any(not t.completed for t, _ in candidates):
        candidates = [(t, exact) for t, exact in candidates if not t.completed]
    exact = [t for t, is_exact in candidates if is_exact]
    return exact if len(exact) == 1 else [t for t, _ in candidates]


# --------------------------------------------------------------------------------------------
# Reading the conversation
# --------------------------------------------------------------------------------------------


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return cast(dict[str, Any], dump(exclude_unset=False))
    return {}


def _text_of(content: Any) -> str:
    """Message content is a str or a list of {"type": "...text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        parts = (_as_dict(p) for p in content)
        return "".join(str(p.get("text") or "") for p in parts)
    return ""


def _loads(text: str) -> Any:
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
        decoded = _loads(raw.strip())
        return decoded if isinstance(decoded, str) else parse_tool_output(decoded)
    if isinstance(raw, Mapping):
        if raw.get("type") in ("text", "input_text", "output_text") and "text" in raw:
            return parse_tool_output(raw["text"])
        for key in ("result", "structuredContent", "content", "tasks"):
            if key in raw and len(raw) <= 3 and "error" not in raw:
                return parse_tool_output(raw[key])
        return dict(raw)
    if isinstance(raw, (list, tuple)):
        decoded_parts = [parse_tool_output(_as_dict(p) or p) for p in raw]
        if len(decoded_parts) == 1 and isinstance(raw[0], Mapping) and "type" in raw[0]:
            return decoded_parts[0]
        flat: list[Any] = []
        for part in decoded_parts:
            flat.extend(part if isinstance(part, list) else [part])
        return flat
    return raw


def _task_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    return None


def _task_views(output: Any) -> list[TaskView]:
    views: list[TaskView] = []
    for raw in output if isinstance(output, list) else []:
        if not isinstance(raw, Mapping):
            continue
        task_id = _task_id(raw.get("id", raw.get("task_id")))
        if task_id is None:
            continue
        done = raw.get("completed", raw.get("status") == "completed")
        views.append(TaskView(task_id, str(raw.get("title") or ""), bool(done)))
    return views


@dataclass
class Exchange:
    """One tool call of the current turn, with its (decoded) output once available."""

    name: str
    args: dict[str, Any]
    output: Any = None
    answered: bool = False


@dataclass
class Conversation:
    user_text: str
    turn: list[Exchange]
    last_touched: int | None  # task id the earlier turns acted on most recently
    last_action: Kind | None  # kind of the most recent mutating tool call in earlier turns
    previous_user_text: str = ""  # lets "7" / "the one with dad" answer our own question
    asked_which: bool = False  # the last assistant reply asked the user to pick a task


def _normalise_input(raw_input: str | list[TResponseInputItem]) -> list[dict[str, Any]]:
    if isinstance(raw_input, str):
        return [{"role": "user", "content": raw_input}]
    return [_as_dict(item) for item in raw_input]


def _is_user(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "user" and item.get("type", "message") == "message"


def _args_of(item: Mapping[str, Any]) -> dict[str, Any]:
    args = item.get("arguments")
    decoded = _loads(args) if isinstance(args, str) else args
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
    return list(by_call.values())


def _touched_id(item: Mapping[str, Any]) -> int | None:
    if item.get("type") == "function_call_output":
        output = parse_tool_output(item.get("output"))
        if isinstance(output, Mapping) and "error" not in output:
            return _task_id(output.get("task_id", output.get("id")))
    elif item.get("type") == "function_call":
        return _task_id(_args_of(item).get("task_id"))
    return None


def read_conversation(raw_input: str | list[TResponseInputItem]) -> Conversation:
    items = _normalise_input(raw_input)
    last_user = max((i for i, it in enumerate(items) if _is_user(it)), default=-1)
    earlier = items[: max(last_user, 0)]
    touched = next((t for t in map(_touched_id, reversed(earlier)) if t is not None), None)
    action = next(
        (
            _KIND_FOR_TOOL[str(it.get("name"))]
            for it in reversed(earlier)
            if it.get("type") == "function_call" and it.get("name") in _KIND_FOR_TOOL
        ),
        None,
    )
    earlier_users = [it for it in earlier if _is_user(it)]
    last_reply: dict[str, Any] = next(
        (it for it in reversed(earlier) if it.get("role") == "assistant"), {}
    )
    return Conversation(
        user_text=_text_of(items[last_user].get("content")) if last_user >= 0 else "",
        turn=_current_turn(items[last_user + 1 :]),
        last_touched=touched,
        last_action=action,
        previous_user_text=_text_of(earlier_users[-1].get("content")) if earlier_users else "",
        asked_which=_WHICH_MARKER in _text_of(last_reply.get("content")),
    )


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------

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
_VERB = {"complete": "complete", "delete": "delete", "update": "update"}


def _ref(task_id: Any, title: Any) -> str:
    return f"'{title}' (task #{task_id})" if title else f"task #{task_id}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _error_sentence(kind: str, exchange: Exchange) -> str:
    task_id = exchange.args.get("task_id", "?")
    error = str(exchange.output.get("error", "")) if isinstance(exchange.output, Mapping) else ""
    if "not found" in error.lower() or not error:
        return f"Sorry, I couldn't find task #{task_id}: it was not found, so nothing changed."
    return f"Sorry, I couldn't {_VERB.get(kind, kind)} task #{task_id}: {error}."


def _success(exchange: Exchange) -> bool:
    return isinstance(exchange.output, Mapping) and "error" not in exchange.output


def _done_ref(exchange: Exchange) -> str:
    out = exchange.output if isinstance(exchange.output, Mapping) else {}
    task_id = out.get("task_id", out.get("id", exchange.args.get("task_id")))
    return _ref(task_id, out.get("title") or exchange.args.get("title"))


def _action_reply(kind: str, exchanges: Sequence[Exchange]) -> str:
    ok = [_done_ref(e) for e in exchanges if _success(e)]
    sentences = [_error_sentence(kind, e) for e in exchanges if not _success(e)]
    if ok:
        sentences.insert(0, _success_sentence(kind, ok, exchanges))
    return " ".join(sentences)


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


def _list_reply(status: str, output: Any) -> str:
    if isinstance(output, Mapping) and "error" in output:
        return f"Sorry, I couldn't load your tasks: {output['error']}."
    tasks = _task_views(output)
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
    return f"You have {len(tasks)} {label}{noun}:\n" + "\n".join(lines)


_QUERY_EDGES = re.compile(
    r"^(?:(?:the|my|a|an|task|item|one|about|to)\s+)+|(?:\s+(?:task|item|one|todo))+$", _FLAGS
)


def _shown_query(query: str) -> str:
    return _QUERY_EDGES.sub("", query).strip() or query


_WHICH_MARKER = "Which one should I"  # read back from history to resolve the user's answer


def _ambiguous_reply(kind: str, query: str, tasks: Sequence[TaskView]) -> str:
    names = _join([f"#{t.id} {t.title}" for t in tasks])
    return (
        f"I found {len(tasks)} tasks matching '{_shown_query(query)}': {names}. "
        f"{_WHICH_MARKER} {_VERB.get(kind, kind)}? You can tell me its number."
    )


def _no_match_reply(query: str) -> str:
    return (
        f"I couldn't find a task matching '{_shown_query(query)}'. "
        'Say "show my tasks" to see what\'s on your list.'
    )


# --------------------------------------------------------------------------------------------
# Planning: what to do next given the intent and this turn's tool calls so far
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCall:
    name: str
    args: dict[str, Any]


Step = list[PlannedCall] | str


def _calls_named(conv: Conversation, name: str) -> list[Exchange]:
    return [e for e in conv.turn if e.name == name]


def _missing_tool(name: str) -> str:
    return f"Sorry, I can't do that right now because the {name} tool isn't available."


def _plan_add(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if ADD not in tools:
        return _missing_tool(ADD)
    made = {str(e.args.get("title", "")).lower() for e in _calls_named(conv, ADD)}
    missing = [
        PlannedCall(ADD, _add_args(t)) for t in intent.new_tasks if t.title.lower() not in made
    ]
    return missing or _action_reply("add", _calls_named(conv, ADD))


def _add_args(task: NewTask) -> dict[str, Any]:
    args: dict[str, Any] = {"title": task.title}
    if task.description:
        args["description"] = task.description
    return args


def _plan_list(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if LIST not in tools:
        return _missing_tool(LIST)
    calls = _calls_named(conv, LIST)
    if not calls:
        return [PlannedCall(LIST, {"status": intent.status})]
    return _list_reply(intent.status, calls[-1].output)


def _resolve_query(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step | int:
    """By-name targets: list first, then act on the single match or ask/say none."""
    listed = [e for e in _calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return "Which task do you mean? Please tell me its number."
        return [PlannedCall(LIST, {"status": "all"})]
    tasks = _task_views(listed[-1].output)
    query = intent.target.query
    matches = match_tasks(query, tasks, prefer_pending=intent.kind == "complete")
    if not matches:
        return _no_match_reply(query)
    if len(matches) > 1:
        return _ambiguous_reply(intent.kind, query, matches)
    return matches[0].id


def _resolve_ids(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | tuple[int, ...]:
    """Task ids to act on (a tuple), or the step to take first (a list_tasks call, a question)."""
    target = intent.target
    if target.ids:
        return target.ids
    if target.ref:
        if conv.last_touched is None:
            return "Which task do you mean? Please tell me its number or name."
        return (conv.last_touched,)
    if not target.query:
        return "Which task do you mean? Please tell me its number or name."
    resolved = _resolve_query(intent, conv, tools)
    return (resolved,) if isinstance(resolved, int) else resolved


def _action_args(intent: Intent, task_id: int) -> dict[str, Any]:
    args: dict[str, Any] = {"task_id": task_id}
    if intent.title:
        args["title"] = intent.title
    if intent.description:
        args["description"] = intent.description
    return args


def _plan_targeted(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    tool = _TOOL_FOR_KIND[intent.kind]
    if tool not in tools:
        return _missing_tool(tool)
    if intent.kind == "update" and not (intent.title or intent.description):
        return "What should the new title or description be?"
    ids = _resolve_ids(intent, conv, tools)
    if not isinstance(ids, tuple):
        return ids
    done = {_task_id(e.args.get("task_id")) for e in _calls_named(conv, tool)}
    missing = [PlannedCall(tool, _action_args(intent, i)) for i in ids if i not in done]
    return missing or _action_reply(intent.kind, _calls_named(conv, tool))


def _carry_over(intent: Intent, conv: Conversation) -> Intent:
    """Complete an elliptic message ("7", "the one with dad") from the previous request."""
    answering = intent.kind == "unknown" and conv.asked_which
    if intent.kind != "again" and not answering:
        return intent
    previous = parse_intent(conv.previous_user_text) if conv.previous_user_text else UNKNOWN
    # Title words answering our "which one?" question become the lookup query.
    target = Target(query=clean_message(conv.user_text).text) if answering else intent.target
    if previous.kind in _TOOL_FOR_KIND:
        return Intent(
            previous.kind, target=target, title=previous.title, description=previous.description
        )
    if intent.kind == "again" and conv.last_action is not None:
        return Intent(conv.last_action, target=target)
    return UNKNOWN


def plan_step(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    if len(conv.turn) >= _MAX_CALLS_PER_TURN:
        return "Sorry, that got complicated. Could you ask me one thing at a time?"
    intent = _carry_over(intent, conv)
    if intent.kind == "add":
        return _plan_add(intent, conv, tools)
    if intent.kind == "list":
        return _plan_list(intent, conv, tools)
    if intent.kind in _TOOL_FOR_KIND:
        return _plan_targeted(intent, conv, tools)
    return _CANNED_REPLIES.get(intent.kind, UNKNOWN_TEXT)


_CANNED_REPLIES: dict[str, str] = {
    "greet": GREETING_TEXT,
    "help": HELP_TEXT,
    "thanks": THANKS_TEXT,
    "cancel": CANCEL_TEXT,
}


def decide(raw_input: str | list[TResponseInputItem], tool_names: Iterable[str]) -> Step:
    """Whole pipeline for one model step: history -> intent -> next step."""
    conv = read_conversation(raw_input)
    return plan_step(parse_intent(conv.user_text), conv, frozenset(tool_names))


# --------------------------------------------------------------------------------------------
# Responses-API output objects
# --------------------------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _output_items(step: Step) -> list[TResponseOutputItem]:
    if isinstance(step, str):
        text = ResponseOutputText(type="output_text", text=step, annotations=[], logprobs=[])
        message = ResponseOutputMessage(
            type="message", role="assistant", status="completed", id=_new_id("msg"), content=[text]
        )
        return [message]
    return [
        ResponseFunctionToolCall(
            type="function_call",
            call_id=_new_id("call"),
            name=call.name,
            arguments=json.dumps(call.args),
            id=_new_id("fc"),
            status="completed",
        )
        for call in step
    ]


def _response(response_id: str, model: str, output: list[TResponseOutputItem]) -> Response:
    return Response(
        id=response_id,
        created_at=time.time(),
        model=model,
        object="response",
        output=output,
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=True,
        status="completed",
        # No usage: the Runner then counts the request itself; there are no tokens to report.
        usage=None,
    )


def _word_chunks(text: str) -> list[str]:
    """Stream text word by word (keeping whitespace) so UIs show it typing."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


class _EventLog:
    """Collects stream events with consecutive sequence numbers."""

    def __init__(self) -> None:
        self.events: list[TResponseStreamEvent] = []

    def add(self, event_cls: Any, **fields: Any) -> None:
        event = event_cls.model_validate({**fields, "sequence_number": len(self.events)})
        self.events.append(cast(TResponseStreamEvent, event))


def _item_events(log: _EventLog, index: int, item: TResponseOutputItem) -> None:
    if isinstance(item, ResponseFunctionToolCall):
        pending = item.model_copy(update={"arguments": "", "status": "in_progress"})
        log.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            item=pending,
            output_index=index,
        )
        ids = {"item_id": item.id or item.call_id, "output_index": index}
        log.add(
            ResponseFunctionCallArgumentsDeltaEvent,
            type="response.function_call_arguments.delta",
            delta=item.arguments,
            **ids,
        )
        log.add(
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            arguments=item.arguments,
            name=item.name,
            **ids,
        )
    elif isinstance(item, ResponseOutputMessage):
        empty = item.model_copy(update={"content": [], "status": "in_progress"})
        log.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            item=empty,
            output_index=index,
        )
        for part_index, part in enumerate(item.content):
            text = part.text if isinstance(part, ResponseOutputText) else ""
            ids = {"item_id": item.id, "output_index": index, "content_index": part_index}
            blank = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
            log.add(
                ResponseContentPartAddedEvent, type="response.content_part.added", part=blank, **ids
            )
            for chunk in _word_chunks(text):
                log.add(
                    ResponseTextDeltaEvent,
                    type="response.output_text.delta",
                    delta=chunk,
                    logprobs=[],
                    **ids,
                )
            log.add(
                ResponseTextDoneEvent,
                type="response.output_text.done",
                text=text,
                logprobs=[],
                **ids,
            )
            log.add(
                ResponseContentPartDoneEvent, type="response.content_part.done", part=part, **ids
            )
    log.add(
        ResponseOutputItemDoneEvent, type="response.output_item.done", item=item, output_index=index
    )


def stream_events(response: Response) -> list[TResponseStreamEvent]:
    """The Responses-API event sequence for an already computed response."""
    log = _EventLog()
    in_progress = response.model_copy(update={"output": [], "status": "in_progress", "usage": None})
    log.add(ResponseCreatedEvent, type="response.created", response=in_progress)
    log.add(ResponseInProgressEvent, type="response.in_progress", response=in_progress)
    for index, item in enumerate(response.output):
        _item_events(log, index, item)
    log.add(ResponseCompletedEvent, type="response.completed", response=response)
    return log.events


# --------------------------------------------------------------------------------------------
# The Model
# --------------------------------------------------------------------------------------------


class OfflineModel(Model):
    """Rule-based, offline replacement for an LLM driving the todo tools.

    Args:
        model_name: reported as ``Response.model`` (for logs/traces only).
    """

    def __init__(self, model_name: str = "offline-todo") -> None:
        self.model_name = model_name

    def _step_output(
        self, input: str | list[TResponseInputItem], tools: Sequence[Tool]
    ) -> list[TResponseOutputItem]:
        names = (str(getattr(tool, "name", "")) for tool in tools)
        return _output_items(decide(input, names))

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        return ModelResponse(
            output=self._step_output(input, tools),
            usage=Usage(requests=1),
            response_id=_new_id("resp"),
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        response = _response(_new_id("resp"), self.model_name, self._step_output(input, tools))
        for event in stream_events(response):
            yield event
