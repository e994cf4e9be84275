"""Rules for questions about the list, and which tasks they ask for (pending, completed, all)."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Intent, ListStatus

# A list question needs two signals: a request or question opener (show, what, do I, ...) and a
# word about the list itself or about what is (not) done. Bare list nouns ("my tasks") also list.
_LIST_TOPIC = re.compile(
    r"\b(?:tasks?|to-?dos?|to do|list|plate|agenda|schedule|items|things|stuff|left|pending|"
    r"remaining|remains?|outstanding|open|incomplete|unfinished|done|complete|completed|"
    r"finished|finish|ticked|checked|crossed|everything|anything|still|next|on for|got on|"
    r"overview|summary|need doing|to be done|(?<=show )all|(?<=list )all|(?<=see )all)\b",
    FLAGS,
)
_LIST_ASK = re.compile(
    r"^(?:show|list|display|see|view|get|give|tell|print|what|what's|whats|what've|which|"
    r"anything|any|everything|do i|have i|did i|am i|is|are|is there|are there|how many|my|all|"
    r"pending|completed|finished|done|open|remaining|outstanding|check|read|pull up|bring up|"
    r"look|have a look|take a look|review|recap|summari[sz]e|go (?:through|over)|run through|"
    r"got|remind me|gimme|how's|how is|how are|how does|how do|know|find out|update me|"
    r"fill me in|catch me up)\b",
    FLAGS,
)
# "haven't finished", "not done yet": pending, although "finished"/"done" is in the sentence.
_NOT_DONE = re.compile(
    r"\b(?:haven'?t|have not|hasn'?t|has not|didn'?t|did not|isn'?t|aren'?t|not|never|yet to)\s++"
    r"(?:i\s++|we\s++|you\s++|yet\s++|been\s++|got(?:ten)?\s++)*+(?:done|finish|finished|complete|"
    r"completed|ticked|checked|crossed|started|do)\b",
    FLAGS,
)
_PENDING_WORDS = re.compile(
    r"\b(?:incomplete|unfinished|uncompleted|undone|pending|left|remaining|remains?|outstanding|"
    r"open|to go|active|due|on my plate|unchecked|todo left|need doing|to be done|"
    r"(?:need|have|got|ought|should)(?: to)? (?:do|finish|complete|get done|tackle|work on))\b",
    FLAGS,
)
_COMPLETED_WORDS = re.compile(
    r"\b(?:completed?|done|finished|finish|checked off|ticked off|ticked|crossed off|"
    r"accomplished|achieved)\b",
    FLAGS,
)
# Weaker hints of "what is still to do", used when nothing says "done".
_PENDING_HINTS = re.compile(
    r"\b(?:still|to do(?! list)|next|today|tonight|this week|tomorrow|on for|got on|should i do)\b",
    FLAGS,
)


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
    FLAGS,
)


# "what do I have?", "what have I got on?": about the list without naming it.
_WHAT_DO_I_HAVE = re.compile(
    r"^what(?:'s|\s++is)?\s++(?:(?:do|have|did|else\s++do)\s*+)?(?:i|we)\s++"
    r"(?:have|got|get|got going)(?:\s++(?:on|to do|left|planned|going on|lined up|coming up))?"
    r"(?:\s++(?:today|tonight|tomorrow|this week|now|right now))?$",
    FLAGS,
)


def list_intent(text: str) -> Intent | None:
    asked = _LIST_ASK.match(text) and _LIST_TOPIC.search(text)
    if not asked and not _LIST_ONLY.match(text) and not _WHAT_DO_I_HAVE.match(text):
        return None
    return Intent("list", status=list_status(text))
