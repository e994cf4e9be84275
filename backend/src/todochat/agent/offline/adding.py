"""Rules for new tasks: "add X", "remind me to X", lists of several titles, and a bare
"buy milk" that is offered rather than added."""

from __future__ import annotations

import re
from collections.abc import Sequence

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Intent
from todochat.agent.offline.lexicon import TASK_VERBS, wordset
from todochat.agent.offline.listing import list_status
from todochat.agent.offline.titles import LIST_SUFFIX, TITLE_FIELD, split_description

_ADD_VERB = re.compile(
    r"^(?:add|put down|put|jot down|jot|note down|write down|pop|stick|throw|include)\b"
    r"\s*(?P<rest>.*)$",
    FLAGS,
)
# Verbs that only mean "add" when followed by a task noun ("make a task to ...").
_ADD_VERB_NEEDS_NOUN = re.compile(
    r"^(?:create|make|new|set up|log|record|start|insert|open|save|enter|schedule)\s++"
    r"(?P<rest>(?:(?:a|an|one|another|new|the)\s++)*+(?:task|todo|to-do|to do|item|reminder|entry|"
    r"note)s?\b.*)$",
    FLAGS,
)
_ADD_NOUN_HEAD = re.compile(
    r"^(?:(?:the following|these|those)\b\s*|(?:a|an|one|another|this|some|two|three|four|few|"
    r"five|several|"
    r"\d+)\s+)?(?:more\s+|new\s+|other\s+)?(?:(?:tasks?|todos?|to-dos?|to dos?|items?|"
    r"reminders?|entry|entries|notes?|ones?|things)\b)?\s*(?:(?:called|named|titled|that says|"
    r"saying|to|for|about)\b|"
    r"[:\-\u2014])?\s*",
    FLAGS,
)
_ADD_LIST_HEAD = re.compile(
    r"^(?:to|on|onto)\s+(?:my|the)\s+(?:to-?do\s+|task\s+)?(?:list|tasks)\s*:?\s*", FLAGS
)
_ADD_PLURAL = re.compile(
    r"^(?:the following|these|some|two|three|four|few|several|\d+)\b|^tasks\b", FLAGS
)
_ADD_NOUN_LED = re.compile(
    r"^(?:new\s+)?(?:task|todo|to-do|to do|reminder|note to self|note|item)\s*[:\-\u2014]\s*"
    r"(?P<title>.+)$",
    FLAGS,
)
# "remind me to X" / "don't forget to X": always a new task, whatever X says.
REMIND = re.compile(
    r"^(?:remind me (?:to|about|that i (?:need|have) to)|remind me|"
    r"(?:don'?t|do not) (?:let me )?forget (?:to|about)|(?:please\s+)?remember (?:to|that i "
    r"(?:need|have) to)|make sure (?:that )?i|(?:that\s+)?i (?:need|have|want|got) to remember to)"
    r"\s+(?P<title>.+)$",
    FLAGS,
)
# "remind me what's left": a question about the list, not a new task.
_REMIND_QUESTION = re.compile(r"^remind me (?:of\s+)?(?:what|which|how many|my|all)\b", FLAGS)
# "I need to X" / "I'd like to X": a new task, unless X is itself a request ("see my list").
NEED = re.compile(
    r"^(?:that\s++)?(?:(?:i|we)(?:\s++|(?=')))?(?:(?:really|still|also|definitely|just)\s++)*+"
    r"(?:(?:'m|am|are|'re)\s++(?:going to|gonna)\s++(?:need|have)\s++to|(?:'ll|will)\s++need\s++to|"
    r"need to|have to|must|should|gotta|got to|'ve got to|ought to|'ll have to|will have to|"
    r"'d better|had better|better|want to|wanna|'d like to|would like to|'d love to)"
    r"\s++(?:(?:really|also|definitely|still|just)\s++)*(?P<title>.+)$",
    FLAGS,
)
COMMAND_HEAD = re.compile(
    r"^(?:add|create|delete|remove|erase|mark|complete|check off|tick off|rename|change|update|"
    r"edit|list|show|see|view|display|look|have a look|take a look|review|get rid of|cancel|"
    r"put|jot|note down|write down|know|find out|hear)\b",
    FLAGS,
)


_TOO_TAIL = re.compile(r"(?<!\s)\s++(?:too|as well)$", FLAGS)
_ANOTHER = re.compile(r"(?:\band|,)\s++(?:another|one more)\b", FLAGS)
_ONE_TASK_HEAD = re.compile(
    r"^(?:a|an|one|this|the)\s+(?:new\s+)?(?:task|todo|to-do|item|reminder|entry|note)\b", FLAGS
)


def add_titles(rest: str, *, by_verbs: bool = False, noun_lists: bool = False) -> Intent | None:
    """The new task(s) named by `rest`: several when it lists them ("these: X, Y", "'X' and 'Y'"),
    with `by_verbs` when each part opens with a task verb ("buy X and call Y"), with
    `noun_lists` when it is a comma list of short names ("apples, pears and plums")."""
    plural = bool(_ADD_PLURAL.match(rest))
    # "a task to buy X and call Y" is one task, unless a second is named: "... and another to".
    by_verbs = by_verbs and (not _ONE_TASK_HEAD.match(rest) or bool(_ANOTHER.search(rest)))
    rest = _ADD_LIST_HEAD.sub("", rest.strip())
    rest = _ADD_NOUN_HEAD.sub("", rest, count=1).strip()
    rest = _ADD_LIST_HEAD.sub("", rest)
    field_match = TITLE_FIELD.match(rest)
    if field_match:
        rest = field_match["rest"]
    # "note down that I need to phone the garage": the task is what follows "need to".
    inner = REMIND.match(rest) or NEED.match(rest)
    if inner:
        rest = inner["title"]
    if not rest:
        return None
    rest = LIST_SUFFIX.sub("", _TOO_TAIL.sub("", rest))
    parts = _split_items(rest, plural=plural, by_verbs=by_verbs, noun_lists=noun_lists)
    tasks = tuple(t for t in (split_description(p) for p in parts) if t.title)
    return Intent("add", new_tasks=tasks) if tasks else None


# Splitters, in two parts so that a run of spaces is scanned once, from its start: where the
# previous match ended (after its spaces) only a separator that is not a space can begin.
_ITEM_SEPARATORS = re.compile(
    r"(?<!\s)(?:\s*+(?:;|,\s*and\s+|,)|\s++(?<=\n)|\s++(?:and|&)\s+|[^\S\n]*+\n)\s*"
    r"|(?<=\s)(?:;|,\s*and\s+|,)\s*",
    FLAGS,
)
_LINE_SEPARATORS = re.compile(r"(?<!\s)(?:\s*+;|[^\S\n]*+\n)\s*|(?<=\s);\s*")
_DASH_BULLET = re.compile(r"(?:^|(?<=\s))-\s++")
_ENUMERATOR = re.compile(r"(?:^|\s)(?:\(?\d{1,2}[.)]|[*\u2022])\s+")
# Applied with .match at quote characters only, by _quoted_items: a search would look for a
# closing quote again from every opening one.
_QUOTED_ITEM = re.compile(r"""(["'])(.+?)\1(?![a-z0-9])""", FLAGS)


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


# What may stand between quoted titles: "'A' and also 'B' on my list, please".
_JOINERS = re.compile(r"\b(?:and|also|plus|then|too|as well|please)\b|[\s,;&.!]", FLAGS)
# "buy a card and to wrap it", "a task to buy milk and another (task) to call mom"
_TO_HEAD = re.compile(
    r"^(?:(?:another|one more)(?:\s++(?:one|task|todo|to-do|item|reminder))?\s++)?to\s++", FLAGS
)
_NOUN_LIST_WORDS = 4  # "apples, pears and plums": short names; longer parts are a sentence


def _split_items(rest: str, *, plural: bool, by_verbs: bool, noun_lists: bool) -> list[str]:
    """One title, or several: "1) X 2) Y", "'X' and 'Y'", "these: X, Y", "buy X, call Y"."""
    if len(_ENUMERATOR.findall(rest)) >= 2:
        return [p for p in _ENUMERATOR.split(rest) if p.strip(" ,;")]
    if rest.startswith("- ") and len(_DASH_BULLET.findall(rest)) >= 2:
        return [p for p in _DASH_BULLET.split(rest) if p.strip(" ,;")]  # "- milk - eggs"
    quoted, unquoted = _quoted_items(rest)
    if len(quoted) >= 2 and not _JOINERS.sub("", LIST_SUFFIX.sub("", unquoted.strip())):
        return quoted
    parts = [p for p in _LINE_SEPARATORS.split(rest) if p.strip()]
    if plural:
        return [p for p in _ITEM_SEPARATORS.split(rest) if p.strip()]
    if by_verbs and len(parts) == 1:
        # "buy eggs and call Bob" is two tasks; "buy bread and butter" is one.
        pieces = [_TO_HEAD.sub("", p) for p in _ITEM_SEPARATORS.split(rest) if p.strip()]
        led = [p.split()[0].lower() in TASK_VERBS and len(p.split()) > 1 for p in pieces]
        if len(pieces) > 1 and all(led):
            return pieces
        if noun_lists and not any(led) and _is_noun_list(rest, pieces):
            return pieces
    return parts


def _is_noun_list(rest: str, pieces: Sequence[str]) -> bool:
    """ "apples, pears and plums", "carrots, onions": a comma list of short names. Two names
    joined by "and" alone stay one title ("bread and butter")."""
    listed = "," in rest or rest.count("&") >= 2
    if not listed or not all(len(p.split()) <= _NOUN_LIST_WORDS for p in pieces):
        return False
    return len(pieces) >= 3 or all(len(p.split()) <= 2 for p in pieces)


def add_intent(text: str) -> Intent | None:
    match = _ADD_NOUN_LED.match(text)
    if match:
        return add_titles(match["title"])
    match = _ADD_VERB.match(text) or _ADD_VERB_NEEDS_NOUN.match(text)
    if match:
        return add_titles(match["rest"], by_verbs=True, noun_lists=True)
    return None


def remind_intent(text: str) -> Intent | None:
    if _REMIND_QUESTION.match(text):
        return Intent("list", status=list_status(text))
    match = REMIND.match(text)
    if not match:
        return None
    title = match["title"]
    while (inner := REMIND.match(title) or NEED.match(title)) is not None:
        title = inner["title"]
    return add_titles(title, by_verbs=True)


# Words after a leading verb that show the message is a request to us, not a task.
_ADDRESSEE = wordset("me us you yourself i it that this something anything away lost ahead on")
# General verbs that open idioms as often as tasks ("get well soon", "take a break"): a bare
# message led by one of them is offered, not added.
GENERAL_VERBS = wordset(
    """get go do make take have look see set start stop put keep move run leave help find check
    try give turn come change follow"""
)


def offer_intent(text: str) -> Intent | None:
    """ "buy milk" on its own reads like a task, but might be a request: we offer to add it."""
    words = text.split()
    if len(words) < 2 or words[0].lower() not in TASK_VERBS:
        return None
    if words[1].lower().strip(",.!?") in _ADDRESSEE:
        return None
    task = split_description(_TOO_TAIL.sub("", text))
    return Intent("offer", new_tasks=(task,)) if task.title else None
