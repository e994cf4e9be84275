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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
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
    "correct",
    "undo",
    "offer",
    "confirm",
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

    One of them is meaningful: explicit ids, a reference to the task the conversation last
    touched ("it", "that one"), a position in the list the user sees ("the first one"; -1 is
    the last), or title words to look up via list_tasks. "The last one" sets both ``ref`` and
    ``ordinal``: it is the task just touched, unless a list was shown since.
    """

    ids: tuple[int, ...] = ()
    ref: bool = False
    query: str = ""
    ordinal: int = 0
    every: bool = False  # "all of them", "everything"


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
    # Read from a loose cue (a statement, not a command): when no task matches, the message
    # was probably not about the list at all, so we answer with help instead of "not found".
    soft: bool = False
    # "change it to oat milk": the new words may be only the part of the title that changes.
    partial: bool = False


UNKNOWN = Intent("unknown")


# --------------------------------------------------------------------------------------------
# Message clean-up
# --------------------------------------------------------------------------------------------

# No pattern here may backtrack without bound (specs/decisions.md): repeats that could
# match the same text are possessive (`*+`, `++`), atomic (`(?>...)`) or bounded (`{0,5}`);
# unanchored searches that begin with a whitespace run start only where the run starts
# (`(?<!\s)`). DOTALL changes nothing on cleaned text, which has no line breaks, and keeps
# `.+$` from failing, and so re-scanning, on raw text.
_FLAGS = re.IGNORECASE | re.DOTALL
_QUOTE_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_TRAILING_PUNCT = re.compile(r"(?<![\s.!?\u2026])[\s.!?\u2026]++$")
# Fillers are stripped from the front so "ok great, actually delete it" reads as "delete it".
# Social openers are remembered: if nothing else is understood we still greet/thank back.
_SOCIAL_FILLER = re.compile(
    r"^(?P<word>thanks|thank you|thx|hi there|hey there|hello there|hi|hello|hey|hiya|howdy|"
    r"good (?:morning|afternoon|evening))\b[\s,:;!.\-]*",
    _FLAGS,
)
# Openers that retract what was just said: "actually make that X", "sorry, I meant X".
_CORRECTION_WORDS = frozenset(["actually", "no", "nope", "wait", "sorry", "oops", "whoops"])
_PLAIN_FILLER = re.compile(
    r"^(?P<filler>ok(?:ay)?|alright|all right|great|cool|nice|perfect|awesome|actually|oh|"
    r"oops|whoops|um+|uh+|well|so|and|also|then|now|hmm+|yes|yeah|yep|"
    r"no(?! longer| more| need| thanks| thank you)|"
    r"nope|never ?mind|nevermind|wait|sorry|my bad|right|btw|by the way|"
    r"please|pls|plz|kindly|possibly|quickly|can you|could you|would you|will you|can u|"
    r"could u|can i|could i|may i|you can|you could|you may|let me know|let me|let's|lets|"
    r"i'?d like you to|i want you to|i would like you to|go ahead and|just)\b[\s,:;!.\-]*",
    _FLAGS,
)
# At most six trailing fillers are stripped: an unbounded chain is re-scanned from every start.
_TRAILING_FILLER = re.compile(
    r"(?<![\s,])(?:[\s,]++(?:please|pls|plz|thanks|thank you|thx|for me|if you can|"
    r"if you could|if possible|when you get a chance|when you can)){1,6}+$",
    _FLAGS,
)


_ARROW = re.compile(r"(?:(?<!\s)\s++)?(?:->|=>|\u2192)\s*+")  # "change milk -> oat milk"


@dataclass(frozen=True)
class Cleaned:
    text: str
    social: Kind | None  # "greet"/"thanks" when the message opened with one
    correction: bool = False  # opened with "actually", "no", "sorry", "wait"...
    request: bool = False  # asked of the assistant ("can you ...", "...?"), not a bare note


# "mind adding X?": a polite request phrased with a gerund.
_GERUNDS = {
    "adding": "add",
    "deleting": "delete",
    "removing": "remove",
    "marking": "mark",
    "renaming": "rename",
    "changing": "change",
    "updating": "update",
    "showing": "show",
    "listing": "list",
    "completing": "complete",
    "ticking": "tick",
    "checking": "check",
    "putting": "put",
    "creating": "create",
    "crossing": "cross",
    "editing": "edit",
    "writing": "write",
}
_GERUND_REQUEST = re.compile(
    r"^(?:would you |do you |could you )?(?:mind|consider|try)\s++(?P<verb>"
    + "|".join(_GERUNDS)
    + r")\b",
    _FLAGS,
)
# Openers that address the assistant: "can you buy milk?" is a request, "buy milk" a note.
_REQUEST_OPENER = re.compile(
    r"^(?:can|could|would|will)\s+(?:you|u)\b|^(?:please\s+)?(?:i'?d like you|i want you)\b",
    _FLAGS,
)


# The parser reads at most this much of a message (specs/decisions.md): every request it knows,
# with a full title and description, fits with room to spare, and it bounds the work per step.
READ_MAX_CHARS = 1_500
_CUT_NOTE = f"(I only read the first {READ_MAX_CHARS:,} characters of your message.)"


def readable_part(message: str) -> str:
    """The whole words of `message` that fit in READ_MAX_CHARS characters (or the first
    READ_MAX_CHARS characters, when the first word alone is longer)."""
    if len(message) <= READ_MAX_CHARS:
        return message
    head = message[:READ_MAX_CHARS]
    if head[-1].isspace() or message[READ_MAX_CHARS].isspace():
        return head
    words = head.rsplit(None, 1)
    return words[0] if len(words) == 2 else head


def clean_message(message: str) -> Cleaned:
    """Normalise quotes/whitespace and strip fillers that carry no intent."""
    text = " ".join(readable_part(message).translate(_QUOTE_MAP).split())
    request = text.endswith("?") or bool(_REQUEST_OPENER.match(text))
    text = _ARROW.sub(" to ", _TRAILING_PUNCT.sub("", text))
    social: Kind | None = None
    correction = False
    while True:
        match = _SOCIAL_FILLER.match(text) or _PLAIN_FILLER.match(text)
        rest = text[match.end() :].strip() if match else ""
        if not match or not rest:
            break
        word = match.groupdict().get("word")
        if word:
            social = "thanks" if word.lower().startswith("th") else "greet"
        correction = correction or str(match.groupdict().get("filler")).lower() in (
            _CORRECTION_WORDS
        )
        text = rest
    text = _TRAILING_PUNCT.sub("", _TRAILING_FILLER.sub("", text))
    gerund = _GERUND_REQUEST.match(text)
    if gerund:
        text = _GERUNDS[gerund["verb"].lower()] + text[gerund.end() :]
        request = True
    return Cleaned(text, social, correction, request)


# --------------------------------------------------------------------------------------------
# Titles and descriptions
# --------------------------------------------------------------------------------------------

_LIST_SUFFIX = re.compile(
    r"(?<!\s)\s++(?:to|on|onto|in|into|from|off(?: of)?|out of)\s++(?:my|the|our)\s++"
    r"(?:to-?do\s++|to do\s++|todo\s++|task\s++|tasks\s++|shopping\s++|grocery\s++|"
    r"[a-z]++\s++)?(?:list|tasks|todos?|to-?dos?)$",
    _FLAGS,
)
_DESC_INLINE = re.compile(
    r"(?<!\s)(?:\s*+[,;\-\u2014\u2013]\s*+|\s++)(?:with\s++(?:a\s++|the\s++)?"
    r"(?:description|desc|details|notes?)(?:\s++of)?|(?:description|desc|details|notes?)\s*+:"
    r"|(?:description|desc)\s++is)\s*:?\s*(?P<desc>.+)$",
    _FLAGS,
)
# After "desc:", the spaces go to the description only when nothing else is left: "(desc: )".
_DESC_PARENS = re.compile(
    r"(?<!\s)\s*+\((?:(?:description|desc|details|notes?)\s*+:"
    r"(?:\s*+(?=[^\s()])|\s*(?=\s\)$)))?(?P<desc>[^()]++)\)$",
    _FLAGS,
)
_DESC_DASH = re.compile(r"(?<!\s)\s++(?:[\u2014\u2013]|--?)\s++(?P<desc>.+)$", re.DOTALL)
# A closing quote is followed by a non-letter, so "'Plan Sam's party'" keeps its apostrophe.
_QUOTED_HEAD = re.compile(r"""^(?P<q>["'])(?P<inner>.+?)(?P=q)(?![a-z0-9])(?P<rest>.*)$""", _FLAGS)
_DESC_LEAD = re.compile(
    r"^[\s,;:\-\u2014\u2013(]*(?:(?:and\s+)?(?:with\s+)?(?:a\s+|the\s+)?"
    r"(?:description|desc|details|notes?)(?:\s+of)?|(?:description|desc|details|notes?)\s*:)?"
    r"\s*:?\s*",
    _FLAGS,
)
# "with title 'X' and description 'Y'": the words "title"/"name" only introduce the title.
_TITLE_FIELD = re.compile(
    r"^(?:with\s++)?(?:a\s++|the\s++)?(?:title|name)\s*(?:of\s+|as\s+|:\s*|=\s*)?(?P<rest>.+)$",
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
_DIGITS_ONLY = re.compile(r"^\d[\d\s]*+$")  # "4", "4 5  6"
_NUMBER = re.compile(r"\d+")
_PRONOUN = re.compile(
    r"^(?:it|its|that|this|them|that one|this one|that task|this task|that item|this item|"
    r"the same one|same one|the previous one|"
    r"(?:the )?(?:one|task|item|thing|todo) (?:that )?(?:i|we|you) (?:just )?(?:added|created|made|"
    r"mentioned|put in|wrote down)|"
    r"the (?:new|latest|newest) one|the one|(?:it|that|this)(?: one)? too)$",
    _FLAGS,
)
_ORDINAL_WORDS: dict[str, int] = {
    "first": 1,
    "1st": 1,
    "top": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "sixth": 6,
    "6th": 6,
    "seventh": 7,
    "7th": 7,
    "eighth": 8,
    "8th": 8,
    "ninth": 9,
    "9th": 9,
    "tenth": 10,
    "10th": 10,
    "last": -1,
    "bottom": -1,
    "final": -1,
}
_ORDINAL = re.compile(
    r"^(?:the\s+|my\s+)?(?:very\s+)?(?P<ord>"
    + "|".join(_ORDINAL_WORDS)
    + r")(?:\s+(?:one|task|item|todo|to-?do|entry|thing))?(?:\s+(?:on|in|of)\s+(?:the|my)"
    r"\s+(?:list|tasks))?$",
    _FLAGS,
)
_TARGET_TRIM = re.compile(
    r"(?<!\s)\s++(?:title|name|description)$|'s$|^(?:my|the|a)\s++(?=task|item|todo)", _FLAGS
)
# Ids inside a longer phrase: "the typo in task 12", "#12", "number 12".
_EMBEDDED_ID = re.compile(r"(?:\btasks?|\bnumber|\bno\.?|\bitem|#)\s*+#?(?P<id>\d++)\b", _FLAGS)


_EVERY = re.compile(
    r"^(?:all|everything|every(?:\s+single)?\s+(?:task|one|item|thing|todo)|them all|the lot|"
    r"all\s+(?:of\s+)?(?:my\s+|the\s+|these\s+|those\s+)?(?:(?:pending|open|remaining)\s+)?"
    r"(?:tasks|items|todos|to-?dos|ones|them|of them)|the (?:whole|entire) list|"
    r"my (?:whole|entire) list)$",
    _FLAGS,
)


# "number 2 on the list" is a position, not the id 2.
_POSITION_ON_LIST = re.compile(
    r"^(?:the\s+)?(?:(?:task|item|number|no\.?)\s*)?#?(?P<n>\d{1,2})(?:st|nd|rd|th)?\s+"
    r"(?:one\s+)?(?:on|in|of)\s+(?:the|my)\s+(?:to-?do\s+)?list$",
    _FLAGS,
)


_TIME_TAIL = re.compile(
    r"(?<!\s)\s++(?:just now|right now|now|earlier|today|yesterday|already|at last|finally|"
    r"tomorrow|tonight|later|soon|asap|"
    r"this (?:morning|afternoon|evening))$",
    _FLAGS,
)


def parse_target(raw: str) -> Target:
    raw = _TIME_TAIL.sub("", raw.strip())
    on_list = _POSITION_ON_LIST.match(raw.strip())
    if on_list and int(on_list["n"]) > 0:
        return Target(ordinal=int(on_list["n"]))
    text = _LIST_SUFFIX.sub("", raw.strip()).strip()
    text = _TARGET_TRIM.sub("", text).strip()
    if _EVERY.match(text):
        return Target(every=True)
    ordinal = _ORDINAL.match(text)
    if ordinal:
        position = _ORDINAL_WORDS[ordinal["ord"].lower()]
        # "the last one" right after an action means that task; after a list, the last row.
        is_last_one = position == -1 and ordinal["ord"].lower() == "last"
        return Target(ordinal=position, ref=is_last_one)
    if _PRONOUN.match(text):
        return Target(ref=True)
    id_text = _ID_FILLER.sub(" ", text).strip()
    if id_text and _DIGITS_ONLY.match(id_text):
        return Target(ids=tuple(dict.fromkeys(int(n) for n in _NUMBER.findall(id_text))))
    return Target(query=_strip_quotes(text))


_ORDINAL_INSIDE = re.compile(
    r"\b(?:the\s++)?(?:very\s++)?(?:" + "|".join(_ORDINAL_WORDS) + r")\b(?:\s++(?:one|task|item|"
    r"todo|to-?do|entry|thing)\b)?(?:\s++(?:on|in|of)\s++(?:the|my)\s++(?:list|tasks)\b)?",
    _FLAGS,
)
_POSITION_INSIDE = re.compile(
    r"\b(?:(?:task|item|number|no\.?)\s*+)?#?\d{1,2}(?:st|nd|rd|th)?\s++(?:one\s++)?(?:on|in|of)"
    r"\s++(?:the|my)\s++(?:to-?do\s++)?list\b",
    _FLAGS,
)
_REF_INSIDE = re.compile(r"\b(?:it|that one|this one|that task|this task)\b", _FLAGS)


def loose_target(text: str) -> Target | None:
    """A target named somewhere inside a longer phrase: ids, then a position, then "it"."""
    for pattern in (_POSITION_INSIDE, _ORDINAL_INSIDE):
        found = pattern.search(text)
        if found:
            target = parse_target(found.group(0))
            if target.ordinal:
                return target
    ids = [int(m["id"]) for m in _EMBEDDED_ID.finditer(text)]
    if ids:
        return Target(ids=tuple(dict.fromkeys(ids)))
    return Target(ref=True) if _REF_INSIDE.search(text) else None


def _wordset(text: str) -> frozenset[str]:
    """A word list written as prose, so the long lexicons below stay readable."""
    return frozenset(text.split())


# --------------------------------------------------------------------------------------------
# Verb lexicons: past forms (for "I rang mum" / "the plants are watered") and the verbs that
# usually open a task title (for "make that sourdough bread" after "add buy bread").
# --------------------------------------------------------------------------------------------

_IRREGULAR_PAST: dict[str, str] = {
    "ate": "eat",
    "eaten": "eat",
    "began": "begin",
    "begun": "begin",
    "bent": "bend",
    "bit": "bite",
    "bitten": "bite",
    "blew": "blow",
    "blown": "blow",
    "bought": "buy",
    "bound": "bind",
    "broke": "break",
    "broken": "break",
    "brought": "bring",
    "built": "build",
    "burnt": "burn",
    "came": "come",
    "caught": "catch",
    "chose": "choose",
    "chosen": "choose",
    "dealt": "deal",
    "did": "do",
    "done": "do",
    "drew": "draw",
    "drawn": "draw",
    "drank": "drink",
    "drunk": "drink",
    "drove": "drive",
    "driven": "drive",
    "dug": "dig",
    "fed": "feed",
    "fought": "fight",
    "found": "find",
    "flew": "fly",
    "flown": "fly",
    "froze": "freeze",
    "frozen": "freeze",
    "gave": "give",
    "given": "give",
    "got": "get",
    "gotten": "get",
    "went": "go",
    "gone": "go",
    "grew": "grow",
    "grown": "grow",
    "hung": "hang",
    "hid": "hide",
    "hidden": "hide",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "known": "know",
    "laid": "lay",
    "learnt": "learn",
    "left": "leave",
    "lent": "lend",
    "lost": "lose",
    "made": "make",
    "mailed": "mail",
    "met": "meet",
    "mown": "mow",
    "paid": "pay",
    "rebuilt": "rebuild",
    "redid": "redo",
    "redone": "redo",
    "rewrote": "rewrite",
    "rewritten": "rewrite",
    "rode": "ride",
    "ridden": "ride",
    "rang": "ring",
    "rung": "ring",
    "ran": "run",
    "sang": "sing",
    "sung": "sing",
    "sent": "send",
    "sewn": "sew",
    "shook": "shake",
    "shaken": "shake",
    "shown": "show",
    "sat": "sit",
    "slept": "sleep",
    "sold": "sell",
    "sought": "seek",
    "spent": "spend",
    "spoke": "speak",
    "spoken": "speak",
    "spun": "spin",
    "stole": "steal",
    "stolen": "steal",
    "stood": "stand",
    "stuck": "stick",
    "swam": "swim",
    "swum": "swim",
    "swept": "sweep",
    "taught": "teach",
    "took": "take",
    "taken": "take",
    "told": "tell",
    "threw": "throw",
    "thrown": "throw",
    "tore": "tear",
    "torn": "tear",
    "understood": "understand",
    "woke": "wake",
    "woken": "wake",
    "wore": "wear",
    "worn": "wear",
    "won": "win",
    "wrote": "write",
    "written": "write",
    "saw": "see",
    "seen": "see",
}
# Past tenses that report something other than finishing the task.
_NOT_COMPLETION = _wordset(
    """need needed feed seed speed bleed breed proceed succeed indeed embed bed red shed wed
    started wanted tried planned forgot forgotten decided hoped liked loved hated added deleted
    removed created listed updated renamed changed marked missed postponed delayed skipped
    cancelled canceled asked wondered said used noticed heard felt thought tired bored excited
    interested worried scared married stressed confused annoyed surprised pleased supposed
    based located allowed expected required overdue"""
)
# After an object ("the oil changed"), fewer forms exclude a report of completion.
_NOT_REPORTED = _NOT_COMPLETION - _wordset("changed updated renamed marked listed")
# Verbs that open task titles; a correction without one keeps the old verb ("Buy" + "oat milk").
_TASK_VERBS = _wordset(
    """add answer apply arrange ask back bake book bring buy call cancel change charge check
    choose clean clear collect confirm contact cook copy cut deliver do download drop email
    empty feed file fill find finish fix fold follow get give go hang help hire hoover install
    invite iron join learn leave lock look mail make meet mop move mow order organise organize
    pack paint pay phone pick plan plant post prep prepare print put read rebook recycle remind
    renew repair replace reply research reserve return review ring run schedule see sell send
    set sew shop sign sort start study submit swap take talk tell text tidy top train update
    upload vacuum visit wash watch water wipe wrap write walk attend bathe celebrate declutter
    defrost donate draft dust exercise fetch grab groom mend message polish practice practise
    proofread rake reschedule respond revise scan shovel ship shred sweep thank trim unpack
    weed"""
)

# --------------------------------------------------------------------------------------------
# Intent rules.  Order matters: specific verbs (rename, delete, mark) are tried before the
# loose "I need to ..." add phrasing and before list questions; loose statements and the
# keyword classifier come last.
# --------------------------------------------------------------------------------------------

_UPDATE_VERB = r"(?:change|update|edit|modify|alter|amend|reword|tweak)"
_UPDATE_DESC = (
    re.compile(
        r"^(?:change|update|edit|modify|set|replace|alter|amend)\s++(?:the\s++)?(?:description|"
        r"desc|details|notes?)\s++(?:of|for|on)\s++(?P<target>.+?)(?<!\s)\s++(?:to|as|with)\s*:?\s+"
        r"(?P<desc>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:change|update|edit|modify|set|alter|amend)\s++(?P<target>.+?)(?:'s)?(?<!\s)\s++"
        r"(?:description|desc|details)\s++(?:to|as)\s*:?\s+(?P<desc>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:add|put|attach|give|set|write)\s++(?:a\s++|an\s++|the\s++)?(?:description|desc|"
        r"details|note)\s++(?:to|for|on)\s++(?P<target>.+?)(?<!\s)\s*(?::|\s-|\u2014|\u2013|"
        r"saying|that says)\s*(?P<desc>.+)$",
        _FLAGS,
    ),
)
_UPDATE_TITLE = (
    # "change task 3 from Buy milk to Buy oat milk"
    re.compile(
        # Atomic: when no " to " follows the first " from ", none follows a later one either.
        rf"^(?:{_UPDATE_VERB}|rename|switch)\s++(?>(?P<target>.+?)(?<!\s)\s++from\s++)"
        r"(?P<old>.+?)(?<!\s)\s++to\s++(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        rf"^(?:{_UPDATE_VERB}|set)\s++(?:the\s++)?(?:title|name)\s++(?:of|for|on)\s++"
        r"(?P<target>.+?)(?<!\s)\s++to\s++(?:say\s++|read\s++)?(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle|re-name)\s++(?P<target>.+?)(?<!\s)\s++(?:to|as|into)\s++"
        r"(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:fix|correct)\s++(?:the\s++|a\s++)?(?:typo|spelling|title|name|wording)\s++"
        r"(?:in|of|on|for)\s++(?P<target>.+?)(?<!\s)(?:\s*[:,;\u2014]\s*|\s+-\s+|\s+to\s+)"
        r"(?:(?:it|that)\s++should\s++(?:be|say|read)\s*:?\s+)?(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        rf"^{_UPDATE_VERB}\s++(?P<target>.+?)(?:'s)?(?<!\s)(?:\s++(?:title|name))?\s++"
        r"(?:to\s++(?:say|read)|so\s++(?:that\s++)?it\s++(?:says|reads)|to|into)\s*:?\s+"
        r"(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        rf"^(?:{_UPDATE_VERB}|rename)\s++(?P<target>.+?)(?<!\s)\s*(?::|\s[\-\u2014\u2013])\s*"
        r"(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle)\s++(?P<target>(?:task\s*+)?#?\d++|it|that|this|that one|this one)"
        r"\s++(?!to\b|as\b)(?P<title>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:make|have)\s++(?P<target>.+?)(?<!\s)\s++(?:say|read)\s*:?\s+(?P<title>.+)$",
        _FLAGS,
    ),
    # "task 3 should say X", "the milk task should be called X"
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++should\s++(?:say|read|be\s++(?:called|named|titled|"
        r"renamed(?:\s++to)?|changed\s++to))\s*:?\s+(?P<title>.+)$",
        _FLAGS,
    ),
    # "it should be X" only with a pronoun or an id: "the report should be done" is no rename.
    re.compile(
        r"^(?P<target>it|that|this|that one|this one|(?:task\s*+)?#?\d++|the\s++.+?(?<!\s)\s++"
        r"(?:one|task|item|todo|entry))\s++should\s++be\s++"
        r"(?!done\b|finished\b|complete)(?P<title>\S++\s++.+)$",
        _FLAGS,
    ),
)
# Only a request to rename, without the new name: we ask for it.
_RENAME_ONLY = re.compile(r"^(?:rename|retitle)\s+(?P<target>.+)$", _FLAGS)
_PERSON = re.compile(r"^(?:i|we|you|he|she|they|i'm|we're|you're|i am|we are)\b", _FLAGS)
_TITLE_WORDS = re.compile(r"^(?:the\s+)?(?:title|name|wording|text)$", _FLAGS)

_DELETE_VERB = (
    r"(?:delete|remove|erase|trash|scrap|drop|discard|nuke|ditch|get rid of|cancel|bin|kill|"
    r"wipe|axe|chuck|toss|dump|strike|forget about|forget(?!\s++to\b))"
)
_DELETE = (
    re.compile(rf"^{_DELETE_VERB}\s++(?P<target>.+)$", _FLAGS),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++(?:can|could|may|should)\s++(?:go|be\s++(?:deleted|removed|"
        r"binned|dropped|scrapped|trashed|cancell?ed)|come off(?:\s++(?:the|my)\s++list)?)"
        r"(?:\s++now)?$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:take|cross|strike)\s++(?P<target>.+?)(?<!\s)\s++(?:off|out)\s++(?:of\s++)?"
        r"(?:my|the)\s++(?:to-?do\s++)?list$",
        _FLAGS,
    ),
)
# "I don't need the milk task anymore", "the gym one is no longer needed": a soft delete.
_NO_LONGER = (
    re.compile(
        r"^(?:i\s++|we\s++)?(?:do not|don'?t|no longer|won'?t|will not|do no longer)\s++"
        r"(?:really\s++)?(?:be\s++)?(?:need|have|want)(?:ing)?\s++(?:to\s++)?(?P<target>.+?)"
        r"(?:(?<!\s)\s++(?:any\s?more|any longer|after all|now|either))?$",
        _FLAGS,
    ),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++(?:(?:is|are|'s)\s++(?:no longer|not)|isn'?t|aren'?t)\s++"
        r"(?:needed|necessary|required|"
        r"happening|relevant)(?:\s++any\s?more)?$",
        _FLAGS,
    ),
)
_DONE_WORD = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked off|resolved)"
_COMPLETE = (
    re.compile(
        rf"^(?:mark|set|flag)\s++(?P<target>.+?)(?<!\s)\s++(?:as\s++|to\s++)?{_DONE_WORD}"
        r"(?:\s++now)?$",
        _FLAGS,
    ),
    re.compile(r"^(?:complete|check off|tick off|cross off|strike off)\s++(?P<target>.+)$", _FLAGS),
    re.compile(
        r"^(?:check|tick|cross)\s++(?P<target>.+?)(?<!\s)\s++off(?:\s++(?:my|the)\s++list)?$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:i'?m|i am|we'?re)?\s*(?:all\s+)?(?:done|finished|through)\s+with\s+(?P<target>.+)$",
        _FLAGS,
    ),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)(?:\s++(?:is|are|has been|have been|was|were)|\s*+'s)\s++"
        r"(?:(?:now|all|already|finally|also)\s++)*(?:done|complete|completed|finished|"
        r"taken care of|sorted|handled|dealt with)(?:\s++(?:now|too|as well))?$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:i(?:'ve|\s++have)?\s++)?(?:(?:just|finally|already)\s++)*+(?:finished|completed|done|"
        r"did)\s*[:\-]?\s+(?P<target>.+)$",
        _FLAGS,
    ),
    # Terse chat style without a verb: "5 done", "tasks 4 and 5 finished".
    re.compile(
        rf"^(?P<target>(?:tasks?\s*+)?#?\d++(?:\s*+(?:,|and|&)\s*+#?\d++)*+)\s*+[:\-]?\s*+"
        rf"{_DONE_WORD}$",
        _FLAGS,
    ),
)
# "finish/close X" is only a completion when X is an id or "it"; "finish the report" alone is
# too ambiguous (it reads like a new task just as well).
_COMPLETE_ID_ONLY = re.compile(r"^(?:finish|close|resolve)\s+(?P<target>.+)$", _FLAGS)
_QUESTION_HEAD = re.compile(r"^(?:what|which|anything|everything|who|how|is|are|any)\b", _FLAGS)

# "I called mom" / "bought the groceries": a past-tense verb that heads the message.
_PAST_TENSE = re.compile(
    r"^(?:i(?:'ve|\s++have)?\s++)?(?:(?:just|finally|already)\s++)*(?P<verb>[a-z]++)\s++"
    r"(?P<rest>.+)$",
    _FLAGS,
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
    _FLAGS,
)
_REPORT_MAX_WORDS = 22

_ADD_VERB = re.compile(
    r"^(?:add|put down|put|jot down|jot|note down|write down|pop|stick|throw|include)\b"
    r"\s*(?P<rest>.*)$",
    _FLAGS,
)
# Verbs that only mean "add" when followed by a task noun ("make a task to ...").
_ADD_VERB_NEEDS_NOUN = re.compile(
    r"^(?:create|make|new|set up|log|record|start|insert|open|save|enter|schedule)\s++"
    r"(?P<rest>(?:(?:a|an|one|another|new|the)\s++)*+(?:task|todo|to-do|to do|item|reminder|entry|"
    r"note)s?\b.*)$",
    _FLAGS,
)
_ADD_NOUN_HEAD = re.compile(
    r"^(?:(?:the following|these|those)\b\s*|(?:a|an|one|another|this|some|two|three|four|few|"
    r"five|several|"
    r"\d+)\s+)?(?:more\s+|new\s+|other\s+)?(?:(?:tasks?|todos?|to-dos?|to dos?|items?|"
    r"reminders?|entry|entries|notes?|ones?|things)\b)?\s*(?:(?:called|named|titled|that says|"
    r"saying|to|for|about)\b|"
    r"[:\-\u2014])?\s*",
    _FLAGS,
)
_ADD_LIST_HEAD = re.compile(
    r"^(?:to|on|onto)\s+(?:my|the)\s+(?:to-?do\s+|task\s+)?(?:list|tasks)\s*:?\s*", _FLAGS
)
_ADD_PLURAL = re.compile(
    r"^(?:the following|these|some|two|three|four|few|several|\d+)\b|^tasks\b", _FLAGS
)
_ADD_NOUN_LED = re.compile(
    r"^(?:new\s+)?(?:task|todo|to-do|to do|reminder|note to self|note|item)\s*[:\-\u2014]\s*"
    r"(?P<title>.+)$",
    _FLAGS,
)
# "remind me to X" / "don't forget to X": always a new task, whatever X says.
_REMIND = re.compile(
    r"^(?:remind me (?:to|about|that i (?:need|have) to)|remind me|"
    r"(?:don'?t|do not) (?:let me )?forget (?:to|about)|(?:please\s+)?remember (?:to|that i "
    r"(?:need|have) to)|make sure (?:that )?i|(?:that\s+)?i (?:need|have|want|got) to remember to)"
    r"\s+(?P<title>.+)$",
    _FLAGS,
)
# "remind me what's left": a question about the list, not a new task.
_REMIND_QUESTION = re.compile(r"^remind me (?:of\s+)?(?:what|which|how many|my|all)\b", _FLAGS)
# "I need to X" / "I'd like to X": a new task, unless X is itself a request ("see my list").
_NEED = re.compile(
    r"^(?:that\s++)?(?:(?:i|we)(?:\s++|(?=')))?(?:(?:really|still|also|definitely|just)\s++)*+"
    r"(?:(?:'m|am|are|'re)\s++(?:going to|gonna)\s++(?:need|have)\s++to|(?:'ll|will)\s++need\s++to|"
    r"need to|have to|must|should|gotta|got to|'ve got to|ought to|'ll have to|will have to|"
    r"'d better|had better|better|want to|wanna|'d like to|would like to|'d love to)"
    r"\s++(?:(?:really|also|definitely|still|just)\s++)*(?P<title>.+)$",
    _FLAGS,
)
_COMMAND_HEAD = re.compile(
    r"^(?:add|create|delete|remove|erase|mark|complete|check off|tick off|rename|change|update|"
    r"edit|list|show|see|view|display|look|have a look|take a look|review|get rid of|cancel|"
    r"put|jot|note down|write down|know|find out|hear)\b",
    _FLAGS,
)

_HELP = re.compile(
    r"\b(?:help|what can you do|what can i (?:ask|say|do|tell)|what do you do|what are you|"
    r"who are you|how does (?:this|it) work|how do (?:i|you) (?:use|work)|commands|"
    r"capabilities|what are your|what can (?:this|the) (?:bot|app|assistant|thing) do)\b",
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

# A list question needs two signals: a request or question opener (show, what, do I, ...) and a
# word about the list itself or about what is (not) done. Bare list nouns ("my tasks") also list.
_LIST_TOPIC = re.compile(
    r"\b(?:tasks?|to-?dos?|to do|list|plate|agenda|schedule|items|things|stuff|left|pending|"
    r"remaining|remains?|outstanding|open|incomplete|unfinished|done|complete|completed|"
    r"finished|finish|ticked|checked|crossed|everything|anything|still|next|on for|got on|"
    r"overview|summary|need doing|to be done|(?<=show )all|(?<=list )all|(?<=see )all)\b",
    _FLAGS,
)
_LIST_ASK = re.compile(
    r"^(?:show|list|display|see|view|get|give|tell|print|what|what's|whats|what've|which|"
    r"anything|any|everything|do i|have i|did i|am i|is|are|is there|are there|how many|my|all|"
    r"pending|completed|finished|done|open|remaining|outstanding|check|read|pull up|bring up|"
    r"look|have a look|take a look|review|recap|summari[sz]e|go (?:through|over)|run through|"
    r"got|remind me|gimme|how's|how is|how are|how does|how do|know|find out|update me|"
    r"fill me in|catch me up)\b",
    _FLAGS,
)
# "haven't finished", "not done yet": pending, although "finished"/"done" is in the sentence.
_NOT_DONE = re.compile(
    r"\b(?:haven'?t|have not|hasn'?t|has not|didn'?t|did not|isn'?t|aren'?t|not|never|yet to)\s++"
    r"(?:i\s++|we\s++|you\s++|yet\s++|been\s++|got(?:ten)?\s++)*+(?:done|finish|finished|complete|"
    r"completed|ticked|checked|crossed|started|do)\b",
    _FLAGS,
)
_PENDING_WORDS = re.compile(
    r"\b(?:incomplete|unfinished|uncompleted|undone|pending|left|remaining|remains?|outstanding|"
    r"open|to go|active|due|on my plate|unchecked|todo left|need doing|to be done|"
    r"(?:need|have|got|ought|should)(?: to)? (?:do|finish|complete|get done|tackle|work on))\b",
    _FLAGS,
)
_COMPLETED_WORDS = re.compile(
    r"\b(?:completed?|done|finished|finish|checked off|ticked off|ticked|crossed off|"
    r"accomplished|achieved)\b",
    _FLAGS,
)
# Weaker hints of "what is still to do", used when nothing says "done".
_PENDING_HINTS = re.compile(
    r"\b(?:still|to do(?! list)|next|today|tonight|this week|tomorrow|on for|got on|should i do)\b",
    _FLAGS,
)
_FOLLOW_UP_FILLER = re.compile(
    r"\b(?:and|also|plus|same|for|with|what|how|about|that|this|one|too|as|well|tasks?|"
    r"numbers?|the|i mean|mean|it's|it is|no)\b|[#,:&]",
    _FLAGS,
)
# "make that X", "I meant X": the user corrects the task just added or renamed.
_CORRECTION = re.compile(
    r"^(?:make (?:that|it|this)(?: one)?|i meant|i mean|meant|it should (?:be|say|read)|"
    r"that should (?:be|say|read)|should (?:be|say|read)|call it|name it|change (?:that|it) to)"
    r"\s*:?\s+(?P<title>.+?)(?:(?<!\s)\s++instead)?$",
    _FLAGS,
)
_UNDO = re.compile(
    r"^(?:undo|revert|reverse|roll back|take back|scratch|strike)(?:\s+(?:that|it|this|"
    r"the last (?:one|change|action|step)|my last (?:change|action|message)))?$",
    _FLAGS,
)
# Keyword classifier for what no grammar rule caught: cue words anywhere in the message.
_COMPLETE_CUES = re.compile(
    r"\b(?:done|finished|completed?|tick(?:ed)?|check(?:ed)? off|cross(?:ed)? off|accomplished)\b",
    _FLAGS,
)
_DELETE_CUES = re.compile(
    r"\b(?:delete|deleted|remove|removed|erase|bin|trash|scrap|drop|nuke|kill|wipe|get rid)\b",
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
        if not match or _PERSON.match(match["target"]):
            continue
        target_text = match["target"]
        if _TITLE_WORDS.match(target_text) and "old" in match.groupdict():
            target_text = match["old"]  # "change the title from X to Y"
        new = split_description(match["title"])
        partial = not text.lower().startswith(("rename", "retitle", "re-name"))
        title = new.title
        if partial and _strip_quotes(match["title"])[:1].islower():
            title = title[:1].lower() + title[1:]  # may end up inside the old title
        return Intent(
            "update",
            target=parse_target(target_text),
            title=title,
            description=new.description,
            partial=partial,
        )
    match = _RENAME_ONLY.match(text)
    if match:
        return Intent("update", target=parse_target(match["target"]))
    return None


def _delete_intent(text: str) -> Intent | None:
    for pattern in _DELETE:
        match = pattern.match(text)
        if match:
            return Intent("delete", target=parse_target(match["target"]))
    for pattern in _NO_LONGER:
        match = pattern.match(text)
        if match:
            target = parse_target(match["target"])
            return Intent("delete", target=target, soft=bool(target.query))
    return None


_LIST_NOUNS = re.compile(
    r"^(?:my\s++|the\s++|all\s++)*+(?:tasks|ones|items|todos|to-?dos|stuff|things|list)$", _FLAGS
)
# "did I finish the report?", "is task 3 done?": questions, never an action.
_YES_NO_QUESTION = re.compile(
    r"^(?:did|have|has|is|are|was|were|do|does|am)\s+(?:i|we|you|it|that|this|the|my|task|#?\d)",
    _FLAGS,
)


def _complete_intent(text: str) -> Intent | None:
    if _YES_NO_QUESTION.match(text):
        return None
    for pattern in _COMPLETE:
        match = pattern.match(text)
        if not match:
            continue
        if _LIST_NOUNS.match(match["target"]):
            return None  # "completed tasks" asks for a list
        target = parse_target(match["target"])
        if target.every or not _QUESTION_HEAD.match(match["target"]):
            return Intent("complete", target=target)
    match = _COMPLETE_ID_ONLY.match(text)
    if match:
        target = parse_target(match["target"])
        if target.ids or target.ref or target.ordinal:
            return Intent("complete", target=target)
    return _past_tense_intent(text)


def _is_past_tense(word: str) -> bool:
    lowered = word.lower()
    if lowered in _NOT_COMPLETION:
        return False
    return lowered in _IRREGULAR_PAST or (len(lowered) > 4 and lowered.endswith("ed"))


def _past_tense_intent(text: str) -> Intent | None:
    match = _PAST_TENSE.match(text)
    if not match or not _is_past_tense(match["verb"]) or match["rest"].lower().startswith("to "):
        return None  # "I've got to renew X" is a plan, not a report
    # The verb stays in the query: "walked the dog" must match the title "Walk the dog".
    return Intent("complete", target=Target(query=f"{match['verb']} {match['rest']}"))


def _report_intent(text: str) -> Intent | None:
    """ "the plants are watered", "groceries bought": a statement that something got done."""
    words = text.rsplit(None, _REPORT_MAX_WORDS)
    tail = len(words[0]) if len(words) > _REPORT_MAX_WORDS else 0
    # The first place, after at least one character of subject, where the rest is a report.
    match = _REPORT.search(text, max(tail, 1))
    if not match or _PERSON.match(text) or _NOT_A_COMMAND.search(text):
        return None
    verb = match["verb"].lower()
    reports_done = verb in ("done", "finished", "completed") or (
        (verb in _IRREGULAR_PAST or (len(verb) > 4 and verb.endswith("ed")))
        and verb not in _NOT_REPORTED
    )
    if reports_done and keywords(text[: match.start()]):
        return Intent("complete", target=Target(query=text), soft=True)
    return None


_TOO_TAIL = re.compile(r"(?<!\s)\s++(?:too|as well)$", _FLAGS)
_ONE_TASK_HEAD = re.compile(
    r"^(?:a|an|one|this|the)\s+(?:new\s+)?(?:task|todo|to-do|item|reminder|entry|note)\b", _FLAGS
)


def _add_titles(rest: str, *, by_verbs: bool = False) -> Intent | None:
    plural = bool(_ADD_PLURAL.match(rest))
    by_verbs = by_verbs and not _ONE_TASK_HEAD.match(rest)
    rest = _ADD_LIST_HEAD.sub("", rest.strip())
    rest = _ADD_NOUN_HEAD.sub("", rest, count=1).strip()
    rest = _ADD_LIST_HEAD.sub("", rest)
    field_match = _TITLE_FIELD.match(rest)
    if field_match:
        rest = field_match["rest"]
    # "note down that I need to phone the garage": the task is what follows "need to".
    inner = _REMIND.match(rest) or _NEED.match(rest)
    if inner:
        rest = inner["title"]
    if not rest:
        return None
    rest = _TOO_TAIL.sub("", rest)
    parts = _split_items(rest, plural=plural, by_verbs=by_verbs)
    tasks = tuple(t for t in (split_description(p) for p in parts) if t.title)
    return Intent("add", new_tasks=tasks) if tasks else None


# Splitters, in two parts so that a run of spaces is scanned once, from its start: where the
# previous match ended (after its spaces) only a separator that is not a space can begin.
_ITEM_SEPARATORS = re.compile(
    r"(?<!\s)(?:\s*+(?:;|,\s*and\s+|,)|\s++(?<=\n)|\s++(?:and|&)\s+|[^\S\n]*+\n)\s*"
    r"|(?<=\s)(?:;|,\s*and\s+|,)\s*",
    _FLAGS,
)
_LINE_SEPARATORS = re.compile(r"(?<!\s)(?:\s*+;|[^\S\n]*+\n)\s*|(?<=\s);\s*")
_ENUMERATOR = re.compile(r"(?:^|\s)(?:\(?\d{1,2}[.)]|[*\u2022])\s+")
# Applied with .match at quote characters only, by _quoted_items: a search would look for a
# closing quote again from every opening one.
_QUOTED_ITEM = re.compile(r"""(["'])(.+?)\1(?![a-z0-9])""", _FLAGS)


def _quoted_items(text: str) -> tuple[list[str], str]:
    """What `_QUOTED_ITEM.findall` finds, and the text `.sub("", text)` leaves, in linear time.

    When a quote character opens no item, no later one of that kind can (a closing quote after
    it would close the earlier one too), so each kind is given up after its first failure.
    """
    items: list[str] = []
    kept: list[str] = []
    done = 0
    upcoming = {quote: text.find(quote) for quote in "\"'"}
    while any(i >= 0 for i in upcoming.values()):
        start = min(i for i in upcoming.values() if i >= 0)
        match = _QUOTED_ITEM.match(text, start)
        if match is None:
            upcoming[text[start]] = -1
            continue
        items.append(match[2])
        kept.append(text[done:start])
        done = match.end()
        for quote, i in upcoming.items():
            if 0 <= i < done:
                upcoming[quote] = text.find(quote, done)
    kept.append(text[done:])
    return items, "".join(kept)


def _split_items(rest: str, *, plural: bool, by_verbs: bool) -> list[str]:
    """One title, or several: "1) X 2) Y", "'X' and 'Y'", "these: X, Y", "buy X, call Y"."""
    if len(_ENUMERATOR.findall(rest)) >= 2:
        return [p for p in _ENUMERATOR.split(rest) if p.strip(" ,;")]
    quoted, unquoted = _quoted_items(rest)
    if len(quoted) >= 2 and not unquoted.strip(" ,;&").lower().replace("and", "").strip(" ,;&"):
        return quoted
    parts = [p for p in _LINE_SEPARATORS.split(rest) if p.strip()]
    if plural:
        return [p for p in _ITEM_SEPARATORS.split(rest) if p.strip()]
    if by_verbs and len(parts) == 1:
        # "buy eggs and call Bob" is two tasks; "buy bread and butter" is one.
        pieces = [p for p in _ITEM_SEPARATORS.split(rest) if p.strip()]
        if len(pieces) > 1 and all(p.split()[0].lower() in _TASK_VERBS for p in pieces):
            return pieces
    return parts


def _add_intent(text: str) -> Intent | None:
    match = _ADD_NOUN_LED.match(text)
    if match:
        return _add_titles(match["title"])
    match = _ADD_VERB.match(text) or _ADD_VERB_NEEDS_NOUN.match(text)
    if match:
        return _add_titles(match["rest"], by_verbs=True)
    return None


def _remind_intent(text: str) -> Intent | None:
    if _REMIND_QUESTION.match(text):
        return Intent("list", status=list_status(text))
    match = _REMIND.match(text)
    if not match:
        return None
    title = match["title"]
    while (inner := _REMIND.match(title) or _NEED.match(title)) is not None:
        title = inner["title"]
    return _add_titles(title)


def _need_intent(text: str) -> Intent | None:
    """ "I need to X" / "I want to X": a new task, unless X is itself a request to us."""
    match = _NEED.match(text)
    if not match:
        return None
    title = match["title"]
    while (inner := _REMIND.match(title) or _NEED.match(title)) is not None:
        title = inner["title"]
    if _PERSON.match(title):
        return None  # "should I delete task 3?" asks us something
    if _COMMAND_HEAD.match(title):
        nested = parse_intent(title)
        # "I need to delete task 4" is a request; "I need to cancel the gym" is a new task.
        concrete = nested.target.ids or nested.target.ref or nested.target.ordinal
        if nested.kind in ("add", "list") or (nested.kind in _TOOL_FOR_KIND and concrete):
            return nested
    return _add_titles(title)


def list_status(text: str) -> ListStatus:
    if _NOT_DONE.search(text) or _PENDING_WORDS.search(text):
        return "pending"
    if _COMPLETED_WORDS.search(text):
        return "completed"
    if _PENDING_HINTS.search(text):
        return "pending"
    return "all"


_LIST_ONLY = re.compile(
    r"^(?:my\s++|the\s++|all\s++)*+(?:(?:pending|open|completed|done|finished)\s++)?(?:tasks|to-?dos|"
    r"to-?do list|to do list|task list|list|agenda)$",
    _FLAGS,
)


# "what do I have?", "what have I got on?": about the list without naming it.
_WHAT_DO_I_HAVE = re.compile(
    r"^what(?:'s|\s++is)?\s++(?:(?:do|have|did|else\s++do)\s*+)?(?:i|we)\s++"
    r"(?:have|got|get|got going)(?:\s++(?:on|to do|left|planned|going on|lined up|coming up))?"
    r"(?:\s++(?:today|tonight|tomorrow|this week|now|right now))?$",
    _FLAGS,
)


def _list_intent(text: str) -> Intent | None:
    asked = _LIST_ASK.match(text) and _LIST_TOPIC.search(text)
    if not asked and not _LIST_ONLY.match(text) and not _WHAT_DO_I_HAVE.match(text):
        return None
    return Intent("list", status=list_status(text))


def _follow_up_intent(text: str) -> Intent | None:
    """Bare ids ("7", "I mean task 7", "and that one too: 7"): same action as before, on 7."""
    rest = _FOLLOW_UP_FILLER.sub(" ", text).strip()
    if rest and _DIGITS_ONLY.match(rest):
        return Intent("again", target=Target(ids=tuple(int(n) for n in _NUMBER.findall(rest))))
    return None


# Words that finish an idiom rather than name a task: "make it quick", "make that happen".
_IDIOM_ENDINGS = _wordset(
    """quick quicker quickly fast faster snappy happen happening so work stop count right better
    worse fine easy good great ok okay sure simple clear it that this sense up one quits even"""
) | frozenset(["a day", "a night", "a deal"])


def _correction_intent(text: str) -> Intent | None:
    match = _CORRECTION.match(text)
    idiom = _strip_quotes(match["title"]).lower() in _IDIOM_ENDINGS if match else True
    if match and not idiom:
        return Intent("correct", title=match["title"])
    return None


def _undo_intent(text: str) -> Intent | None:
    return Intent("undo") if _UNDO.match(text) else None


_CONFIRM = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|y|sure|ok|okay|please|please do|do it|go ahead|go for it|"
    r"absolutely|of course|definitely|correct|right|exactly|that's right|sounds good|"
    r"(?:add|save|create|put|keep) (?:it|that|this)(?: one)?)(?:\s++(?:please|thanks|"
    r"thank you|then|to (?:my|the) list))*+$",
    _FLAGS,
)
# Words after a leading verb that show the message is a request to us, not a task.
_ADDRESSEE = _wordset("me us you yourself i it that this something anything away lost ahead on")
# General verbs that open idioms as often as tasks ("get well soon", "take a break"): a bare
# message led by one of them is offered, not added.
_GENERAL_VERBS = _wordset(
    """get go do make take have look see set start stop put keep move run leave help find check
    try give turn come change follow"""
)


def _confirm_intent(text: str) -> Intent | None:
    return Intent("confirm") if _CONFIRM.match(text) else None


def _offer_intent(text: str) -> Intent | None:
    """ "buy milk" on its own reads like a task, but might be a request: we offer to add it."""
    words = text.split()
    if len(words) < 2 or words[0].lower() not in _TASK_VERBS:
        return None
    if words[1].lower().strip(",.!?") in _ADDRESSEE:
        return None
    task = split_description(_TOO_TAIL.sub("", text))
    return Intent("offer", new_tasks=(task,)) if task.title else None


# Negated, hedged or questioning messages never trigger an action from loose cue words.
_NOT_A_COMMAND = re.compile(
    r"^(?:did|have|has|was|were|do|does|why|when|where|whose|should|shall|could|would|will|can|"
    r"may|might|if)\b|\b(?:not|never|don'?t|do not|doesn'?t|didn'?t|won'?t|isn'?t|aren'?t|"
    r"haven'?t|no|maybe|perhaps|might|later|whether|if)\b",
    _FLAGS,
)


def _cue_intent(text: str) -> Intent | None:
    """Keyword classifier: one kind of action word anywhere, and an unmistakable target.

    Only explicit ids, a list position or "it" are accepted here, never title words: a
    destructive action on a guessed task is worse than asking.
    """
    if _QUESTION_HEAD.match(text) or _NOT_A_COMMAND.search(text):
        return None
    cue_sets: tuple[tuple[Kind, re.Pattern[str]], ...] = (
        ("complete", _COMPLETE_CUES),
        ("delete", _DELETE_CUES),
    )
    kinds = [kind for kind, cues in cue_sets if cues.search(text)]
    if len(kinds) != 1:
        return None
    target = loose_target(text)
    return Intent(kinds[0], target=target) if target else None


# Checked first: "forget it" must never reach the delete rule as "forget <it>".
_CANCEL = re.compile(
    r"^(?:never ?mind|nevermind|forget (?:it|that|about it)|no|nope|nothing|none|neither|"
    r"neither of them|none of them|cancel|stop|abort|leave it|skip it|don'?t bother)"
    r"(?:\s+(?:then|thanks|please))?$",
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


# Two clauses, one of them an action on "it": "plants are watered, mark it done",
# "no longer need to call the plumber, remove it". The other clause names the task.
_CLAUSE_BREAK = re.compile(
    r"(?:(?<!\s)(?:\s*+(?:[,;:]|\.\s)|\s++[\-\u2014\u2013]\s)|(?<=\s)(?:[,;:]|\.\s))\s*"
    r"(?:(?:and|so|then)\s++)?|(?<!\s)\s++(?:and|so|then)\s+",
    _FLAGS,
)
_ANAPHOR = re.compile(r"\b(?:it|that|this|them)\b", _FLAGS)


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
            if action.kind not in _TOOL_FOR_KIND or not action.target.ref:
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
    if other.kind in _TOOL_FOR_KIND and not other.target.ref:
        return other.target
    if other.kind not in ("unknown", "again", "offer"):
        return None  # "add X, then mark it done" is two requests, not one
    return loose_target(text) or (Target(query=text) if keywords(text) else None)


_RULES = (
    _cancel_intent,
    _undo_intent,
    _confirm_intent,
    _compound_intent,
    _update_intent,
    _delete_intent,
    _add_intent,
    _complete_intent,
    _remind_intent,
    _need_intent,
    _social_intent,
    _list_intent,
    _follow_up_intent,
    _correction_intent,
    _report_intent,
    _cue_intent,
    _offer_intent,
)


# Clauses of a compound message are parsed without splitting them again.
_CLAUSE_RULES = tuple(rule for rule in _RULES if rule is not _compound_intent)


def _parse_clean(
    cleaned: Cleaned, rules: Sequence[Callable[[str], Intent | None]] = _RULES
) -> Intent:
    if not cleaned.text:
        return Intent(cleaned.social or "unknown")
    for rule in rules:
        intent = rule(cleaned.text)
        if intent is not None and intent.kind == "offer":
            # "buy cat food" is a note to self; "can you book a flight?" gets asked about.
            general = cleaned.text.split()[0].lower() in _GENERAL_VERBS
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


# --------------------------------------------------------------------------------------------
# Fuzzy title matching
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = _wordset(
    """the a an my our your this that one ones task tasks item items todo to do list about for
    of on in at with i me it is are was were be been has have had now already finally also
    please entry reminder thing called named titled just all so too you can could would
    possibly quickly really"""
)
# Verbs that say "it's done" without naming the task: "got the groceries", "sorted the car
# insurance". They are ignored when matching a completion against titles.
_GENERIC_DONE = frozenset(["get", "do", "don", "mak", "finish", "complet", "sort", "handl", "deal"])
_MIN_COVERAGE = 0.6  # share of the user's words a title must contain to count as a match


def _stem(word: str) -> str:
    """Crude but symmetric stemmer: applied to both sides, so only consistency matters."""
    word = _IRREGULAR_PAST.get(word, word)
    if len(word) > 4 and word.endswith(("ies", "ied")):
        word = word[:-3] + "y"  # "tidied" -> "tidy", "batteries" -> "battery"
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


def _match_score(wanted: frozenset[str], have: frozenset[str]) -> float:
    """How well a title fits the user's words: either most of the user's words are in the
    title, or the user repeated the whole title inside a longer sentence."""
    common = len(wanted & have)
    score = common / len(wanted)
    if len(have) >= 2 and common == len(have):
        score = max(score, 0.8)
    return score


def match_tasks(query: str, tasks: Sequence[TaskView], prefer_pending: bool) -> list[TaskView]:
    """Tasks whose title best covers the query words; several means "ask the user"."""
    wanted = keywords(query)
    if prefer_pending and wanted - _GENERIC_DONE:
        wanted = wanted - _GENERIC_DONE
    if not wanted:
        return []
    scored: list[tuple[float, TaskView, bool]] = []
    for task in tasks:
        have = keywords(task.title)
        scored.append((_match_score(wanted, have), task, have == wanted))
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


def _normalise_input(raw_input: str | list[TResponseInputItem]) -> list[dict[str, Any]]:
    if isinstance(raw_input, str):
        return [{"role": "user", "content": raw_input}]
    # Items are only read, so plain dicts (all the Runner sends) are used as they are: this runs
    # on every step over the whole history.
    items = cast(list[Any], raw_input)
    return [item if type(item) is dict else _as_dict(item) for item in items]


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
            by_call[call_id].more = by_call[call_id].name == LIST and _cut_list(item.get("output"))
    return list(by_call.values())


def _cut_list(raw: Any) -> bool:
    decoded = _loads(raw) if isinstance(raw, str) else raw
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
                rows = _task_views(parse_tool_output(item.get("output")))
                history.listing = tuple(t.id for t in display_order(rows))
            continue
        if name == LIST:
            continue
        decoded = parse_tool_output(item.get("output")) if kind == "function_call_output" else {}
        output: Mapping[str, Any] = decoded if isinstance(decoded, Mapping) else {}
        if "error" in output:
            continue
        args = _args_of(item) if kind == "function_call" else {}
        found = _task_id(output.get("task_id", output.get("id"))) if output else None
        task_id = found if found is not None else _task_id(args.get("task_id"))
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
            _KIND_FOR_TOOL[str(it.get("name"))]
            for it in reversed(earlier)
            if it.get("type") == "function_call" and it.get("name") in _KIND_FOR_TOOL
        ),
        None,
    )
    previous_user = next((it for it in reversed(earlier) if _is_user(it)), None)
    last_reply: dict[str, Any] = next(
        (it for it in reversed(earlier) if it.get("role") == "assistant"), {}
    )
    reply_text = _text_of(last_reply.get("content"))
    user_text = _text_of(items[last_user].get("content")) if last_user >= 0 else ""
    return Conversation(
        user_text=readable_part(user_text),
        cut=len(user_text) > READ_MAX_CHARS,
        turn=_current_turn(items[last_user + 1 :]),
        last_touched=history.touched,
        last_action=action,
        previous_user_text=readable_part(_text_of(previous_user.get("content")))
        if previous_user
        else "",
        asked_which=_WHICH_MARKER in reply_text,
        asked_title=_TITLE_MARKER in reply_text,
        offered=_OFFER_MARKER in reply_text,
        which_ids=tuple(int(n) for n in _HASH_ID.findall(reply_text))
        if _WHICH_MARKER in reply_text
        else (),
        last_tool=history.tool,
        last_title=history.title,
        listing=history.listing or (),
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


def _list_reply(status: str, output: Any, *, more: bool = False) -> str:
    if isinstance(output, Mapping) and "error" in output:
        return f"Sorry, I couldn't load your tasks: {output['error']}."
    tasks = display_order(_task_views(output))
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
    _FLAGS,
)


def _shown_query(query: str) -> str:
    return _QUERY_EDGES.sub("", query).strip() or query


_WHICH_MARKER = "Which one should I"  # read back from history to resolve the user's answer
_TITLE_MARKER = "What should the new title"  # likewise, for "rename task 3" without a title
_OFFER_MARKER = "Do you want me to add"  # "yes" then adds what the user said before


def _ambiguous_reply(kind: str, query: str, tasks: Sequence[TaskView]) -> str:
    names = _join([f"#{t.id} {t.title}" for t in display_order(tasks)])
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
    return _list_reply(intent.status, calls[-1].output, more=calls[-1].more)


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
        return UNKNOWN_TEXT if intent.soft else _no_match_reply(query)
    if len(matches) > 1:
        return _ambiguous_reply(intent.kind, query, matches)
    return matches[0].id


def _resolve_ordinal(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step | int:
    """ "the first one": a row of the list the user last saw, or of a fresh list."""
    position = intent.target.ordinal
    # After "which one?", "the second one" counts among the candidates we named.
    rows: Sequence[int] = conv.which_ids or conv.listing
    if not rows:
        listed = [e for e in _calls_named(conv, LIST) if e.answered]
        if not listed:
            if LIST not in tools:
                return "Which task do you mean? Please tell me its number."
            status = "pending" if intent.kind == "complete" else "all"
            return [PlannedCall(LIST, {"status": status})]
        rows = [t.id for t in display_order(_task_views(listed[-1].output))]
    if not rows:
        return "Your list is empty, so there's nothing to " + _VERB.get(intent.kind, "change") + "."
    if position > len(rows):
        return f"There are only {len(rows)} tasks on the list. Which one do you mean?"
    return rows[position - 1] if position > 0 else rows[position]


_BULK_LIMIT = 10  # keeps a bulk completion inside one model step


def _resolve_every(
    intent: Intent, conv: Conversation, tools: frozenset[str]
) -> Step | tuple[int, ...]:
    """ "mark them all done": every pending task. Deleting or renaming everything at once is
    refused: one misread word would lose the whole list."""
    listed = [e for e in _calls_named(conv, LIST) if e.answered]
    if not listed:
        if LIST not in tools:
            return _missing_tool(LIST)
        status = "pending" if intent.kind == "complete" else "all"
        return [PlannedCall(LIST, {"status": status})]
    if intent.kind != "complete":
        shown = _list_reply("all", listed[-1].output)
        return (
            f"{shown}\nTo be safe I don't {_VERB.get(intent.kind, 'change')} everything at once. "
            'Tell me which ones by number, for example "delete 3 and 4".'
        )
    tasks = display_order(_task_views(listed[-1].output))
    pending = tuple(t.id for t in tasks if not t.completed)
    if not pending:
        return "You have no pending tasks, so there's nothing to complete. All clear!"
    if len(pending) > _BULK_LIMIT:
        return (
            f"You have {len(pending)} pending tasks; I can complete up to {_BULK_LIMIT} at once. "
            "Tell me which ones by number."
        )
    return pending


def _resolve_ids(
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


def _action_args(intent: Intent, task_id: int) -> dict[str, Any]:
    args: dict[str, Any] = {"task_id": task_id}
    if intent.title:
        args["title"] = intent.title[:1].upper() + intent.title[1:]
    if intent.description:
        args["description"] = intent.description
    return args


def _plan_targeted(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    tool = _TOOL_FOR_KIND[intent.kind]
    if tool not in tools:
        return _missing_tool(tool)
    if intent.kind == "update" and not (intent.title or intent.description):
        return f"{_TITLE_MARKER} or description be?"
    ids = _resolve_ids(intent, conv, tools)
    if not isinstance(ids, tuple):
        return ids
    if intent.kind == "update" and intent.title and len(ids) == 1:
        intent = _with_partial_title(intent, ids[0], conv)
    done = {_task_id(e.args.get("task_id")) for e in _calls_named(conv, tool)}
    missing = [PlannedCall(tool, _action_args(intent, i)) for i in ids if i not in done]
    return missing or _action_reply(intent.kind, _calls_named(conv, tool))


def _with_partial_title(intent: Intent, task_id: int, conv: Conversation) -> Intent:
    """ "change milk to oat milk" on "Buy milk" -> "Buy oat milk"; full titles stay whole."""
    new = intent.title or ""
    if intent.target.query:
        listed = [e for e in _calls_named(conv, LIST) if e.answered]
        old = next((t.title for t in _task_views(listed[-1].output) if t.id == task_id), "")
        edited = partial_edit(old, _shown_query(intent.target.query), new) if listed else new
    elif intent.partial and task_id == conv.last_touched and conv.last_title:
        edited = merge_correction(conv.last_title, new)
    else:
        return intent
    return Intent(
        "update", target=Target(ids=(task_id,)), title=edited, description=intent.description
    )


def partial_edit(old: str, phrase: str, new: str) -> str:
    """Replace the words the user named ("milk") inside the old title by the new words,
    unless the new words already make a whole title."""
    match = re.search(rf"\b{re.escape(phrase)}\b", old, _FLAGS) if phrase else None
    new_words, old_words = new.split(), old.split()
    if not match or not new_words or phrase.lower() == old.lower():
        return new
    new_first = _stem(new_words[0].lower())
    if new_first in _TASK_STEMS or new_first == _stem(old_words[0].lower()):
        return new
    lowered, wanted = new.lower(), phrase.lower()
    if lowered.endswith(wanted) or (wanted not in lowered and len(new_words) <= 2):
        return _tidy_title(old[: match.start()] + new + old[match.end() :])
    return new


_REPEATED_WORD = re.compile(r"\b(\w++)\s++\1\b", _FLAGS)


def _tidy_title(text: str) -> str:
    """ "Water the the garden" -> "Water the garden" after splicing words into a title."""
    return clean_title(_REPEATED_WORD.sub(r"\1", text))


def merge_correction(old: str, new: str) -> str:
    """The title meant by "make that <new>" for a task called <old>.

    A full title replaces the old one ("walk the dog twice"); a bare object keeps the old
    verb ("Buy milk" + "oat milk" -> "Buy oat milk"), replacing the words it repeats or, when
    it repeats none, as many words from the end as it has ("Call mom at 5" + "6").
    """
    new = _strip_quotes(new)
    old_words, new_words = old.split(), new.split()
    if not old_words or not new_words:
        return clean_title(new)
    old_first, new_first = _stem(old_words[0].lower()), _stem(new_words[0].lower())
    if old_first == new_first or old_first not in _TASK_STEMS or new_first in _TASK_STEMS:
        return clean_title(new)
    rest = old_words[1:]
    new_stems = [_stem(w.lower()) for w in new_words]
    keep = len(rest) - len(new_words) if len(new_words) < len(rest) else 0
    for k, word in enumerate(rest):
        stem = _stem(word.lower())
        if word.lower() not in _STOPWORDS and stem in new_stems:
            keep = max(0, k - new_stems.index(stem))
            break
    return _tidy_title(" ".join([old_words[0], *rest[:keep], new]))


_TASK_STEMS = frozenset(_stem(v) for v in _TASK_VERBS)


def _plan_correction(intent: Intent, conv: Conversation, tools: frozenset[str]) -> Step:
    """ "make that X" / "actually X" right after adding or renaming a task: rename it."""
    text = intent.title or ""
    if conv.last_tool not in (ADD, UPDATE) or conv.last_touched is None or not conv.last_title:
        if intent.soft or len(text.split()) < 2:
            return UNKNOWN_TEXT
        return "Which task should I change? Tell me its number or name and the new title."
    if intent.soft:
        # A bare "actually X" must clearly be about that task, or it is something else.
        first_same = _stem(text.split()[0].lower()) == _stem(conv.last_title.split()[0].lower())
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
    if previous.kind in _TOOL_FOR_KIND:
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
    _FLAGS,
)


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
    if intent.kind == "correct":
        return _plan_correction(intent, conv, tools)
    if intent.kind == "undo":
        return _plan_undo(conv, tools)
    if intent.kind == "offer":
        continuing = conv.last_tool == ADD and _CONTINUING.search(conv.user_text)
        if not intent.soft or continuing:
            return _plan_add(Intent("add", new_tasks=intent.new_tasks), conv, tools)
        title = intent.new_tasks[0].title
        return f"{_OFFER_MARKER} '{title}' to your list? Say yes and I'll add it."
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
        return f"{step} {_CUT_NOTE}"
    return step


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


_WORD_CHUNK = re.compile(r"\S+\s*|\s+")


def _word_chunks(text: str) -> list[str]:
    """Stream text word by word (keeping whitespace) so UIs show it typing."""
    return _WORD_CHUNK.findall(text) or [text]


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
