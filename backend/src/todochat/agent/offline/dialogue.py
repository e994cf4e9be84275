"""Messages about the conversation rather than a task: greetings, thanks, help, "yes",
"never mind", "undo", "I meant X" and bare follow-up ids."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Intent, Target
from todochat.agent.offline.lexicon import wordset
from todochat.agent.offline.targets import DIGITS_ONLY, NUMBER
from todochat.agent.offline.titles import strip_quotes

_HELP = re.compile(
    r"\b(?:help|what can you do|what can i (?:ask|say|do|tell)|what do you do|what are you|"
    r"who are you|how does (?:this|it) work|how do (?:i|you) (?:use|work)|commands|"
    r"capabilities|what are your|what can (?:this|the) (?:bot|app|assistant|thing) do)\b",
    FLAGS,
)
_THANKS = re.compile(
    r"^(?:thanks|thank you|thx|ty|cheers|much appreciated|appreciate it|great|perfect|awesome|"
    r"cool|nice|ok|okay|got it|good|sounds good|excellent|wonderful)\b",
    FLAGS,
)
_GREET = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day))\b", FLAGS
)


_FOLLOW_UP_FILLER = re.compile(
    r"\b(?:and|also|plus|same|for|with|what|how|about|that|this|one|too|as|well|tasks?|"
    r"numbers?|the|i mean|mean|it's|it is|no)\b|[#,:&]",
    FLAGS,
)
# "make that X", "I meant X": the user corrects the task just added or renamed.
_CORRECTION = re.compile(
    r"^(?:make (?:that|it|this)(?: one)?|i meant|i mean|meant|it should (?:be|say|read)|"
    r"that should (?:be|say|read)|should (?:be|say|read)|call it|name it|change (?:that|it) to)"
    r"\s*:?\s+(?P<title>.+?)(?:(?<!\s)\s++instead)?$",
    FLAGS,
)
_UNDO = re.compile(
    r"^(?:undo|revert|reverse|roll back|take back|scratch|strike)(?:\s+(?:that|it|this|"
    r"the last (?:one|change|action|step)|my last (?:change|action|message)))?$",
    FLAGS,
)


def follow_up_intent(text: str) -> Intent | None:
    """Bare ids ("7", "I mean task 7", "and that one too: 7"): same action as before, on 7."""
    rest = _FOLLOW_UP_FILLER.sub(" ", text).strip()
    if rest and DIGITS_ONLY.match(rest):
        return Intent("again", target=Target(ids=tuple(int(n) for n in NUMBER.findall(rest))))
    return None


# Words that finish an idiom rather than name a task: "make it quick", "make that happen".
_IDIOM_ENDINGS = wordset(
    """quick quicker quickly fast faster snappy happen happening so work stop count right better
    worse fine easy good great ok okay sure simple clear it that this sense up one quits even"""
) | frozenset(["a day", "a night", "a deal"])


def correction_intent(text: str) -> Intent | None:
    match = _CORRECTION.match(text)
    idiom = strip_quotes(match["title"]).lower() in _IDIOM_ENDINGS if match else True
    if match and not idiom:
        return Intent("correct", title=match["title"])
    return None


def undo_intent(text: str) -> Intent | None:
    return Intent("undo") if _UNDO.match(text) else None


_CONFIRM = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|y|sure|ok|okay|please|please do|do it|go ahead|go for it|"
    r"absolutely|of course|definitely|correct|right|exactly|that's right|sounds good|"
    r"(?:add|save|create|put|keep) (?:it|that|this)(?: one)?)(?:\s++(?:please|thanks|"
    r"thank you|then|to (?:my|the) list))*+$",
    FLAGS,
)


def confirm_intent(text: str) -> Intent | None:
    return Intent("confirm") if _CONFIRM.match(text) else None


# Checked first: "forget it" must never reach the delete rule as "forget <it>".
_CANCEL = re.compile(
    r"^(?:never ?mind|nevermind|forget (?:it|that|about it)|no|nope|nothing|none|neither|"
    r"neither of them|none of them|cancel|stop|abort|leave it|skip it|don'?t bother)"
    r"(?:\s+(?:then|thanks|please))?$",
    FLAGS,
)


def cancel_intent(text: str) -> Intent | None:
    return Intent("cancel") if _CANCEL.match(text) else None


def social_intent(text: str) -> Intent | None:
    if _HELP.search(text):
        return Intent("help")
    if _GREET.match(text):
        return Intent("greet")
    if _THANKS.match(text):
        return Intent("thanks")
    return None
