"""Fuzzy title matching: which of the user's tasks a few words name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from todochat.agent.offline.lexicon import IRREGULAR_PAST, wordset

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = wordset(
    """the a an my our your this that one ones task tasks item items todo to do list about for
    of on in at with i me it is are was were be been has have had now already finally also
    please entry reminder thing called named titled just all so too you can could would
    possibly quickly really"""
)
# Verbs that say "it's done" without naming the task: "got the groceries", "sorted the car
# insurance". They are ignored when matching a completion against titles.
_GENERIC_DONE = frozenset(["get", "do", "don", "mak", "finish", "complet", "sort", "handl", "deal"])
_MIN_COVERAGE = 0.6  # share of the user's words a title must contain to count as a match


def stem_of(word: str) -> str:
    """Crude but symmetric stemmer: applied to both sides, so only consistency matters."""
    word = IRREGULAR_PAST.get(word, word)
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


# Verbs people use for one another ("rang Sam" for "Call Sam"), by their stems.
_SAME_AS = {"ring": "call", "phon": "call", "hoover": "vacuum"}


def keywords(text: str) -> frozenset[str]:
    words = _WORD.findall(text.lower().replace("'s", ""))
    stems = (stem_of(w) for w in words if w not in STOPWORDS)
    return frozenset(_SAME_AS.get(s, s) for s in stems)


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


def names_whole_title(query: str, task: TaskView) -> bool:
    """Every word of the query is in the task's title: "bread and butter" names "Buy bread and
    butter" as a whole, not two tasks."""
    return keywords(query) - _GENERIC_DONE <= keywords(task.title)
