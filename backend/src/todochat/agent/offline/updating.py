"""Rules for renaming a task or changing its description."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.cues import PERSON
from todochat.agent.offline.intent import Intent
from todochat.agent.offline.targets import parse_target
from todochat.agent.offline.titles import clean_description, split_description, strip_quotes

_UPDATE_VERB = r"(?:change|update|edit|modify|alter|amend|reword|tweak)"
_UPDATE_DESC = (
    re.compile(
        r"^(?:change|update|edit|modify|set|replace|alter|amend)\s++(?:the\s++)?(?:description|"
        r"desc|details|notes?)\s++(?:of|for|on)\s++(?P<target>.+?)(?<!\s)\s++(?:to|as|with)\s*:?\s+"
        r"(?P<desc>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:change|update|edit|modify|set|alter|amend)\s++(?P<target>.+?)(?:'s)?(?<!\s)\s++"
        r"(?:description|desc|details)\s++(?:to|as)\s*:?\s+(?P<desc>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:add|put|attach|give|set|write)\s++(?:a\s++|an\s++|the\s++)?(?:description|desc|"
        r"details|note)\s++(?:to|for|on)\s++(?P<target>.+?)(?<!\s)\s*(?::|\s-|\u2014|\u2013|"
        r"saying|that says)\s*(?P<desc>.+)$",
        FLAGS,
    ),
)
_UPDATE_TITLE = (
    # "change task 3 from Buy milk to Buy oat milk"
    re.compile(
        # Atomic: when no " to " follows the first " from ", none follows a later one either.
        rf"^(?:{_UPDATE_VERB}|rename|switch)\s++(?>(?P<target>.+?)(?<!\s)\s++from\s++)"
        r"(?P<old>.+?)(?<!\s)\s++to\s++(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        rf"^(?:{_UPDATE_VERB}|set)\s++(?:the\s++)?(?:title|name)\s++(?:of|for|on)\s++"
        r"(?P<target>.+?)(?<!\s)\s++to\s++(?:say\s++|read\s++)?(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle|re-name)\s++(?P<target>.+?)(?<!\s)\s++(?:to|as|into)\s++"
        r"(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:fix|correct)\s++(?:the\s++|a\s++)?(?:typo|spelling|title|name|wording)\s++"
        r"(?:in|of|on|for)\s++(?P<target>.+?)(?<!\s)(?:\s*[:,;\u2014]\s*|\s+-\s+|\s+to\s+)"
        r"(?:(?:it|that)\s++should\s++(?:be|say|read)\s*:?\s+)?(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        rf"^{_UPDATE_VERB}\s++(?P<target>.+?)(?:'s)?(?<!\s)(?:\s++(?:title|name))?\s++"
        r"(?:to\s++(?:say|read)|so\s++(?:that\s++)?it\s++(?:says|reads)|to|into)\s*:?\s+"
        r"(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        rf"^(?:{_UPDATE_VERB}|rename)\s++(?P<target>.+?)(?<!\s)\s*(?::|\s[\-\u2014\u2013])\s*"
        r"(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:rename|retitle)\s++(?P<target>(?:task\s*+)?#?\d++|it|that|this|that one|this one)"
        r"\s++(?!to\b|as\b)(?P<title>.+)$",
        FLAGS,
    ),
    re.compile(
        r"^(?:make|have)\s++(?P<target>.+?)(?<!\s)\s++(?:say|read)\s*:?\s+(?P<title>.+)$",
        FLAGS,
    ),
    # "task 3 should say X", "the milk task should be called X"
    re.compile(
        r"^(?P<target>.+?)(?<!\s)\s++should\s++(?:say|read|be\s++(?:called|named|titled|"
        r"renamed(?:\s++to)?|changed\s++to))\s*:?\s+(?P<title>.+)$",
        FLAGS,
    ),
    # "it should be X" only with a pronoun or an id: "the report should be done" is no rename.
    re.compile(
        r"^(?P<target>it|that|this|that one|this one|(?:task\s*+)?#?\d++|the\s++.+?(?<!\s)\s++"
        r"(?:one|task|item|todo|entry))\s++should\s++be\s++"
        r"(?!done\b|finished\b|complete)(?P<title>\S++\s++.+)$",
        FLAGS,
    ),
)
# Only a request to rename, without the new name: we ask for it.
_RENAME_ONLY = re.compile(r"^(?:rename|retitle)\s+(?P<target>.+)$", FLAGS)


_TITLE_WORDS = re.compile(r"^(?:the\s+)?(?:title|name|wording|text)$", FLAGS)


def update_intent(text: str) -> Intent | None:
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
        if not match or PERSON.match(match["target"]):
            continue
        target_text = match["target"]
        if _TITLE_WORDS.match(target_text) and "old" in match.groupdict():
            target_text = match["old"]  # "change the title from X to Y"
        new = split_description(match["title"])
        partial = not text.lower().startswith(("rename", "retitle", "re-name"))
        title = new.title
        if partial and strip_quotes(match["title"])[:1].islower():
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
