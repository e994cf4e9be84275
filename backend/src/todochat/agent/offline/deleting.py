"""Rules for deleting tasks, including soft ones ("I don't need the milk task anymore") and the
whole list or a part of it ("clear my list", "delete the done ones")."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Intent
from todochat.agent.offline.targets import parse_target

_DELETE_VERB = (
    r"(?:delete|remove|erase|trash|scrap|drop|discard|nuke|ditch|get rid of|cancel|bin|kill|"
    r"wipe|axe|chuck|toss|dump|strike|forget about|forget(?!\s++to\b))"
)
_DELETE = (
    re.compile(rf"^{_DELETE_VERB}\s++(?P<target>.+)$", FLAGS),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++(?:can|could|may|should)\s++(?:go|be\s++(?:deleted|removed|"
        r"binned|dropped|scrapped|trashed|cancell?ed)|come off(?:\s++(?:the|my)\s++list)?)"
        r"(?:\s++now)?$",
        FLAGS,
    ),
    re.compile(
        r"^(?:take|cross|strike)\s++(?P<target>.+?)(?<!\s)\s++(?:off|out)\s++(?:of\s++)?"
        r"(?:my|the)\s++(?:to-?do\s++)?list$",
        FLAGS,
    ),
)
# "I don't need the milk task anymore", "the gym one is no longer needed": a soft delete.
_NO_LONGER = (
    re.compile(
        r"^(?:i\s++|we\s++)?(?:do not|don'?t|no longer|won'?t|will not|do no longer)\s++"
        r"(?:really\s++)?(?:be\s++)?(?:need|have|want)(?:ing)?\s++(?:to\s++)?(?P<target>.+?)"
        r"(?:(?<!\s)\s++(?:any\s?more|any longer|after all|now|either))?$",
        FLAGS,
    ),
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++(?:(?:is|are|'s)\s++(?:no longer|not)|isn'?t|aren'?t)\s++"
        r"(?:needed|necessary|required|"
        r"happening|relevant)(?:\s++any\s?more)?$",
        FLAGS,
    ),
)


# "clear my list", "clean out the done ones": only about the whole list or a part of it by
# status; "clear the gutters" and "empty the dishwasher" are tasks.
_CLEAR = re.compile(
    r"^(?:clear|clean|empty|purge|reset)(?:\s++(?:out|up|off|away))?\s++(?P<target>.+)$", FLAGS
)


def delete_intent(text: str) -> Intent | None:
    cleared = _CLEAR.match(text)
    target = parse_target(cleared["target"]) if cleared else None
    if target is not None and target.every:
        return Intent("delete", target=target)
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
