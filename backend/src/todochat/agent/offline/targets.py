"""Which task(s) a message is about: "task 4", "3, 4 and 5", "it", "the first one",
"all of them", or title words to look up."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Target
from todochat.agent.offline.titles import LIST_SUFFIX, strip_quotes

_ID_FILLER = re.compile(
    r"\b(?:tasks?|numbers?|no|ids?|items?|and|plus|the|also|too|as well|both|&)\b|[#,:&.]", FLAGS
)
DIGITS_ONLY = re.compile(r"^\d[\d\s]*+$")  # "4", "4 5  6"
NUMBER = re.compile(r"\d+")
_PRONOUN = re.compile(
    r"^(?:it|its|that|this|them|that one|this one|that task|this task|that item|this item|"
    r"the same one|same one|the previous one|"
    r"(?:the )?(?:one|task|item|thing|todo) (?:that )?(?:i|we|you) (?:just )?(?:added|created|made|"
    r"mentioned|put in|wrote down)|"
    r"the (?:new|latest|newest) one|the one|(?:it|that|this)(?: one)? too)$",
    FLAGS,
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
    FLAGS,
)
_TARGET_TRIM = re.compile(
    r"(?<!\s)\s++(?:title|name|description)$|'s$|^(?:my|the|a)\s++(?=task|item|todo)", FLAGS
)
# Ids inside a longer phrase: "the typo in task 12", "#12", "number 12".
_EMBEDDED_ID = re.compile(r"(?:\btasks?|\bnumber|\bno\.?|\bitem|#)\s*+#?(?P<id>\d++)\b", FLAGS)


# "all", "everything", "all my tasks", "the completed ones", "everything I've finished".
_STATUS_WORD = (
    r"(?:completed|complete|done|finished|ticked|checked|crossed|pending|open|remaining|"
    r"unfinished|incomplete|outstanding|undone|active)(?:\s++off)?"
)
_ROWS = r"(?:tasks|items|todos|to-?dos|ones|things|entries)"
_EVERY = re.compile(
    r"^(?:all|everything|every(?:\s+single)?\s+(?:task|one|item|thing|todo)|them all|the lot|"
    rf"every(?:\s++single)?\s++{_STATUS_WORD}\s++(?:task|one|item|thing|todo|entry)|"
    r"all\s+(?:of\s+)?(?:my\s+|the\s+|these\s+|those\s+)?(?:(?:pending|open|remaining)\s+)?"
    r"(?:tasks|items|todos|to-?dos|ones|them|of them)|the (?:whole|entire) list|"
    r"my (?:whole|entire) list|"
    rf"all\s++(?:of\s++)?(?:my\s++|the\s++|these\s++|those\s++)?{_STATUS_WORD}\s++{_ROWS}|"
    rf"(?:my\s++|the\s++|these\s++|those\s++)?{_STATUS_WORD}(?:\s++{_ROWS})?|"
    rf"(?:all\s++)?(?:(?:of\s++)?(?:my|the)\s++)?(?:{_ROWS}|everything)\s++(?:that\s++(?:are|were|is)|"
    rf"that's|i'?ve|i\s++have|i)\s++(?:already\s++|now\s++)?{_STATUS_WORD}|"
    r"(?:my|the)\s++(?:(?:whole|entire|full|to-?do|task)\s++){0,3}list|"
    r"everything on (?:it|there)|the rest(?: of them)?|my (?:tasks|to-?dos|items))$",
    FLAGS,
)
_PENDING_STATUS = re.compile(
    r"\b(?:pending|open|remaining|unfinished|incomplete|outstanding|undone|active)\b", FLAGS
)
_COMPLETED_STATUS = re.compile(r"\b(?:completed?|done|finished|ticked|checked|crossed)\b", FLAGS)


def _every(text: str) -> Target:
    """Every task, or every pending or completed one when the words say so."""
    if _PENDING_STATUS.search(text):
        return Target(every=True, status="pending")
    if _COMPLETED_STATUS.search(text):
        return Target(every=True, status="completed")
    return Target(every=True)


# "number 2 on the list" is a position, not the id 2.
_POSITION_ON_LIST = re.compile(
    r"^(?:the\s+)?(?:(?:task|item|number|no\.?)\s*)?#?(?P<n>\d{1,2})(?:st|nd|rd|th)?\s+"
    r"(?:one\s+)?(?:on|in|of)\s+(?:the|my)\s+(?:to-?do\s+)?list$",
    FLAGS,
)


_TIME_TAIL = re.compile(
    r"(?<!\s)\s++(?:just now|right now|now|earlier|today|yesterday|already|at last|finally|"
    r"tomorrow|tonight|later|soon|asap|"
    r"this (?:morning|afternoon|evening))$",
    FLAGS,
)


# "tasks 3 to 7", "2-4": a short run of ids (a longer one is surely not meant).
_ID_RANGE = re.compile(
    r"^(?:(?:tasks|numbers|ids|items)\s*+)?#?(?P<first>\d{1,9})\s*+(?:-|\u2013|to|through|thru)"
    r"\s*+#?(?P<last>\d{1,9})$",
    FLAGS,
)
_RANGE_MAX = 50


def parse_target(raw: str) -> Target:
    raw = _TIME_TAIL.sub("", raw.strip())
    on_list = _POSITION_ON_LIST.match(raw.strip())
    if on_list and int(on_list["n"]) > 0:
        return Target(ordinal=int(on_list["n"]))
    untrimmed = LIST_SUFFIX.sub("", raw.strip()).strip()
    text = _TARGET_TRIM.sub("", untrimmed).strip()
    if _EVERY.match(text) or _EVERY.match(untrimmed):  # "the completed ones", "my tasks"
        return _every(text)
    ordinal = _ORDINAL.match(text)
    if ordinal:
        position = _ORDINAL_WORDS[ordinal["ord"].lower()]
        # "the last one" right after an action means that task; after a list, the last row.
        is_last_one = position == -1 and ordinal["ord"].lower() == "last"
        return Target(ordinal=position, ref=is_last_one)
    if _PRONOUN.match(text):
        return Target(ref=True)
    id_range = _ID_RANGE.match(text)
    if id_range and 0 < int(id_range["last"]) - int(id_range["first"]) < _RANGE_MAX:
        return Target(ids=tuple(range(int(id_range["first"]), int(id_range["last"]) + 1)))
    id_text = _ID_FILLER.sub(" ", text).strip()
    if id_text and DIGITS_ONLY.match(id_text):
        return Target(ids=tuple(dict.fromkeys(int(n) for n in NUMBER.findall(id_text))))
    return Target(query=strip_quotes(text))


_ORDINAL_INSIDE = re.compile(
    r"\b(?:the\s++)?(?:very\s++)?(?:" + "|".join(_ORDINAL_WORDS) + r")\b(?:\s++(?:one|task|item|"
    r"todo|to-?do|entry|thing)\b)?(?:\s++(?:on|in|of)\s++(?:the|my)\s++(?:list|tasks)\b)?",
    FLAGS,
)
_POSITION_INSIDE = re.compile(
    r"\b(?:(?:task|item|number|no\.?)\s*+)?#?\d{1,2}(?:st|nd|rd|th)?\s++(?:one\s++)?(?:on|in|of)"
    r"\s++(?:the|my)\s++(?:to-?do\s++)?list\b",
    FLAGS,
)
_REF_INSIDE = re.compile(r"\b(?:it|that one|this one|that task|this task)\b", FLAGS)


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
