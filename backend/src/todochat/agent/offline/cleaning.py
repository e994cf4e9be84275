"""Message clean-up: the part of a message that is read, quotes and whitespace normalised,
and the fillers that carry no intent ("ok great, actually ...", "... please") stripped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from todochat.agent.offline.intent import Kind

# No pattern of this package may backtrack without bound (specs/decisions.md): repeats that could
# match the same text are possessive (`*+`, `++`), atomic (`(?>...)`) or bounded (`{0,5}`);
# unanchored searches that begin with a whitespace run start only where the run starts
# (`(?<!\s)`). DOTALL changes nothing on cleaned text, which has no line breaks, and keeps
# `.+$` from failing, and so re-scanning, on raw text.
FLAGS = re.IGNORECASE | re.DOTALL
# Curly quotes read as straight ones; an emoji's variation selector ("✔\ufe0f") is dropped.
_QUOTE_MAP = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\ufe0f": None}
)
TRAILING_PUNCT = re.compile(r"(?<![\s.!?\u2026])[\s.!?\u2026]++$")
# Fillers are stripped from the front so "ok great, actually delete it" reads as "delete it".
# Social openers are remembered: if nothing else is understood we still greet/thank back.
_SOCIAL_FILLER = re.compile(
    r"^(?P<word>thanks|thank you|thx|hi there|hey there|hello there|hi|hello|hey|hiya|howdy|"
    r"good (?:morning|afternoon|evening))\b[\s,:;!.\-]*",
    FLAGS,
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
    FLAGS,
)
# At most six trailing fillers are stripped: an unbounded chain is re-scanned from every start.
_TRAILING_FILLER = re.compile(
    r"(?<![\s,])(?:[\s,]++(?:please|pls|plz|thanks|thank you|thx|for me|if you can|"
    r"if you could|if possible|when you get a chance|when you can)){1,6}+$",
    FLAGS,
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
    FLAGS,
)
# Openers that address the assistant: "can you buy milk?" is a request, "buy milk" a note.
_REQUEST_OPENER = re.compile(
    r"^(?:can|could|would|will)\s+(?:you|u)\b|^(?:please\s+)?(?:i'?d like you|i want you)\b",
    FLAGS,
)


# The parser reads at most this much of a message (specs/decisions.md): every request it knows,
# with a full title and description, fits with room to spare, and it bounds the work per step.
READ_MAX_CHARS = 1_500
CUT_NOTE = f"(I only read the first {READ_MAX_CHARS:,} characters of your message.)"


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
    text = _ARROW.sub(" to ", TRAILING_PUNCT.sub("", text))
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
    text = TRAILING_PUNCT.sub("", _TRAILING_FILLER.sub("", text))
    gerund = _GERUND_REQUEST.match(text)
    if gerund:
        text = _GERUNDS[gerund["verb"].lower()] + text[gerund.end() :]
        request = True
    return Cleaned(text, social, correction, request)
