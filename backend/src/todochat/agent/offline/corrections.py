"""New titles made from a few words: "change milk to oat milk" on "Buy milk", "make that
oat milk" right after adding it."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.conversation import Conversation, calls_named
from todochat.agent.offline.intent import LIST, Intent, Target
from todochat.agent.offline.lexicon import TASK_VERBS
from todochat.agent.offline.matching import STOPWORDS, stem_of
from todochat.agent.offline.replies import shown_query
from todochat.agent.offline.titles import clean_title, strip_quotes
from todochat.agent.offline.tool_output import task_views


def with_partial_title(intent: Intent, task_id: int, conv: Conversation) -> Intent:
    """ "change milk to oat milk" on "Buy milk" -> "Buy oat milk"; full titles stay whole."""
    new = intent.title or ""
    if intent.target.query:
        listed = [e for e in calls_named(conv, LIST) if e.answered]
        old = next((t.title for t in task_views(listed[-1].output) if t.id == task_id), "")
        edited = partial_edit(old, shown_query(intent.target.query), new) if listed else new
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
    match = re.search(rf"\b{re.escape(phrase)}\b", old, FLAGS) if phrase else None
    new_words, old_words = new.split(), old.split()
    if not match or not new_words or phrase.lower() == old.lower():
        return new
    new_first = stem_of(new_words[0].lower())
    if new_first in _TASK_STEMS or new_first == stem_of(old_words[0].lower()):
        return new
    lowered, wanted = new.lower(), phrase.lower()
    if lowered.endswith(wanted) or (wanted not in lowered and len(new_words) <= 2):
        return _tidy_title(old[: match.start()] + new + old[match.end() :])
    return new


_REPEATED_WORD = re.compile(r"\b(\w++)\s++\1\b", FLAGS)


def _tidy_title(text: str) -> str:
    """ "Water the the garden" -> "Water the garden" after splicing words into a title."""
    return clean_title(_REPEATED_WORD.sub(r"\1", text))


def merge_correction(old: str, new: str) -> str:
    """The title meant by "make that <new>" for a task called <old>.

    A full title replaces the old one ("walk the dog twice"); a bare object keeps the old
    verb ("Buy milk" + "oat milk" -> "Buy oat milk"), replacing the words it repeats or, when
    it repeats none, as many words from the end as it has ("Call mom at 5" + "6").
    """
    new = strip_quotes(new)
    old_words, new_words = old.split(), new.split()
    if not old_words or not new_words:
        return clean_title(new)
    old_first, new_first = stem_of(old_words[0].lower()), stem_of(new_words[0].lower())
    if old_first == new_first or old_first not in _TASK_STEMS or new_first in _TASK_STEMS:
        return clean_title(new)
    rest = old_words[1:]
    new_stems = [stem_of(w.lower()) for w in new_words]
    keep = len(rest) - len(new_words) if len(new_words) < len(rest) else 0
    for k, word in enumerate(rest):
        stem = stem_of(word.lower())
        if word.lower() not in STOPWORDS and stem in new_stems:
            keep = max(0, k - new_stems.index(stem))
            break
    return _tidy_title(" ".join([old_words[0], *rest[:keep], new]))


_TASK_STEMS = frozenset(stem_of(v) for v in TASK_VERBS)
