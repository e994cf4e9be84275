"""Task titles and descriptions as the user wrote them: "buy milk." -> "Buy milk", and
"title (details)" / "title - details" split into two fields."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS, TRAILING_PUNCT
from todochat.agent.offline.intent import NewTask

LIST_SUFFIX = re.compile(
    r"(?<!\s)\s++(?:to|on|onto|in|into|from|off(?: of)?|out of)\s++(?:my|the|our)\s++"
    r"(?:to-?do\s++|to do\s++|todo\s++|task\s++|tasks\s++|shopping\s++|grocery\s++|"
    r"[a-z]++\s++)?(?:list|tasks|todos?|to-?dos?)$",
    FLAGS,
)
_DESC_INLINE = re.compile(
    r"(?<!\s)(?:\s*+[,;\-\u2014\u2013]\s*+|\s++)(?:with\s++(?:a\s++|the\s++)?"
    r"(?:description|desc|details|notes?)(?:\s++of)?|(?:description|desc|details|notes?)\s*+:"
    r"|(?:description|desc)\s++is)\s*:?\s*(?P<desc>.+)$",
    FLAGS,
)
# After "desc:", the spaces go to the description only when nothing else is left: "(desc: )".
_DESC_PARENS = re.compile(
    r"(?<!\s)\s*+\((?:(?:description|desc|details|notes?)\s*+:"
    r"(?:\s*+(?=[^\s()])|\s*(?=\s\)$)))?(?P<desc>[^()]++)\)$",
    FLAGS,
)
_DESC_DASH = re.compile(r"(?<!\s)\s++(?:[\u2014\u2013]|--?)\s++(?P<desc>.+)$", re.DOTALL)
# A closing quote is followed by a non-letter, so "'Plan Sam's party'" keeps its apostrophe.
_QUOTED_HEAD = re.compile(r"""^(?P<q>["'])(?P<inner>.+?)(?P=q)(?![a-z0-9])(?P<rest>.*)$""", FLAGS)
_DESC_LEAD = re.compile(
    r"^[\s,;:\-\u2014\u2013(]*(?:(?:and\s+)?(?:with\s+)?(?:a\s+|the\s+)?"
    r"(?:description|desc|details|notes?)(?:\s+of)?|(?:description|desc|details|notes?)\s*:)?"
    r"\s*:?\s*",
    FLAGS,
)
# "with title 'X' and description 'Y'": the words "title"/"name" only introduce the title.
TITLE_FIELD = re.compile(
    r"^(?:with\s++)?(?:a\s++|the\s++)?(?:title|name)\s*(?:of\s+|as\s+|:\s*|=\s*)?(?P<rest>.+)$",
    FLAGS,
)
_LEADING_CONNECTOR = re.compile(r"^(?:called|named|titled|that says|saying)\s+", FLAGS)


def strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text.strip('"`').strip()


def clean_title(raw: str) -> str:
    """Turn the user's wording into a tidy task title ("buy milk." -> "Buy milk")."""
    text = LIST_SUFFIX.sub("", raw.strip())
    text = _LEADING_CONNECTOR.sub("", text)
    text = strip_quotes(TRAILING_PUNCT.sub("", text))
    text = TRAILING_PUNCT.sub("", text).rstrip(",;:-\u2014\u2013 ")
    # SHOUTED messages should not produce SHOUTED tasks.
    if text.isupper() and len(text) > 3:
        text = text.lower()
    return text[:1].upper() + text[1:]


def clean_description(raw: str) -> str | None:
    text = strip_quotes(LIST_SUFFIX.sub("", raw.strip()).rstrip(")"))
    text = TRAILING_PUNCT.sub("", text).strip()
    return text[:1].upper() + text[1:] if text else None


# "put 'X' on it" after the list was named: the place, not a description.
_ON_IT = re.compile(r"^(?:on|onto|to|in|into)\s++(?:it|there|that|this)$", FLAGS)


def split_description(raw: str) -> NewTask:
    """Separate "title with description X" / "title (X)" / "'title' - X" into two fields."""
    raw = LIST_SUFFIX.sub("", raw.strip())
    quoted = _QUOTED_HEAD.match(raw)
    if quoted:
        rest = _ON_IT.sub("", LIST_SUFFIX.sub("", quoted["rest"].strip()))
        rest = _DESC_LEAD.sub("", rest, count=1).rstrip(")")
        return NewTask(clean_title(quoted["inner"]), clean_description(rest) if rest else None)
    for pattern in (_DESC_INLINE, _DESC_PARENS, _DESC_DASH):
        match = pattern.search(raw)
        if match and match.start() > 0:
            return NewTask(clean_title(raw[: match.start()]), clean_description(match["desc"]))
    return NewTask(clean_title(raw))
