"""Regular-expression denial of service (issue 11): no pattern of the service backtracks without
bound, and no message holds a worker.

Every compiled pattern of the package is searched in 10,000-character strings (the longest chat
message) made of its own words, punctuation, quotes, conjunctions, digits, other scripts and runs
of spaces, repeated after an opener and before an ending that makes a match fail late. A search
must stay under a sanity bound a hundred times what a linear scan of that length takes: the
patterns these tests replaced took from a third of a second to hours on such strings. A CPU-time
alarm stops a runaway search, so a backtracking pattern fails the test instead of hanging it.
The bounds are CPU time of this thread, not wall-clock time: other load does not move them much.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

import pytest
from bench.parse import adversarial_messages, findings, ongoing_conversation

import todochat
from todochat.agent.offline import adding, cleaning, parser, planning
from todochat.chat.schemas import MAX_MESSAGE_CHARS

LENGTH = MAX_MESSAGE_CHARS
SEARCH_BOUND_S = 0.1  # one search of 10,000 characters; a linear one takes about 1 ms
STEP_BOUND_S = 1.0  # one model step on a 10,000-character message; a linear one, a few ms
TURN_BOUND_S = 3.0  # one chat turn through the app, database included
ALARM_S = 5.0  # a runaway search is stopped here

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs CPU-time alarms")


class Runaway(Exception):
    """Raised by the CPU-time alarm inside a search or a turn that would not end."""


@contextmanager
def cpu_alarm(seconds: float = ALARM_S) -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise Runaway(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGVTALRM, stop)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def cpu_seconds(fn, *args):  # type: ignore[no-untyped-def]
    """CPU time of this thread spent in fn(*args); the alarm stops it if it does not end."""
    with cpu_alarm():
        start = time.thread_time()
        fn(*args)
        return time.thread_time() - start


def _all_patterns() -> dict[str, re.Pattern[str]]:
    """Every compiled pattern the package keeps in a module, a class or a tuple of patterns."""
    found: dict[str, re.Pattern[str]] = {}
    modules = [todochat] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(todochat.__path__, "todochat.")
    ]
    for module in modules:
        holders = [(module.__name__, vars(module))] + [
            (f"{module.__name__}.{name}", vars(value))
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
        for prefix, namespace in holders:
            for name, value in namespace.items():
                values = value if isinstance(value, tuple) else (value,)
                for i, pattern in enumerate(values):
                    if isinstance(pattern, re.Pattern) and isinstance(pattern.pattern, str):
                        suffix = f"[{i}]" if isinstance(value, tuple) else ""
                        found.setdefault(f"{prefix}:{name}{suffix}", pattern)
    return found


PATTERNS = _all_patterns()
# Applied with .match at quote characters only, never searched: tested through its caller.
QUOTED_ITEM = "todochat.agent.offline.adding:_QUOTED_ITEM"

GENERIC = (
    "!!", "?", ".", ",", ";", ":", " - ", "\u2014", "->", "(", ")", "'", '"', "'s", "&", "#1",
    "1", "1 and", "\u2026", "ok!!", "日本語", "é", "  ", "\n",
)  # fmt: skip


def _fill(opener: str, piece: str, ending: str) -> str:
    room = LENGTH - len(opener) - len(ending)
    return opener + (piece * (room // len(piece) + 1))[:room] + ending


def hostile_strings(pattern: re.Pattern[str]) -> Iterator[str]:
    """10,000-character strings that make a pattern repeat what it repeats, then fail."""
    own = list(dict.fromkeys(re.findall(r"[A-Za-z][A-Za-z']+", pattern.pattern)))
    openers = ("", f"{own[0]} ") if own else ("",)
    for piece in own[:24] + list(GENERIC):
        for separator in ("", " "):
            for opener in openers:
                for ending in ("x", " 1"):
                    yield _fill(opener, piece + separator, ending)


def test_the_package_has_the_patterns_under_test() -> None:
    names = " ".join(PATTERNS)
    assert len(PATTERNS) > 100
    for name in (
        "_CONTINUING",
        "_REPORT",
        "DIGITS_ONLY",
        "_JWT",
        "_ITEM_SEPARATORS",
        "_EVERY",
        "_SEQUENCE_BREAK",
        "_NAME_BREAK",
        "_ID_RANGE",
        "_BULK_IDS",
        "_CLEAR",
    ):
        assert f":{name}" in names


@pytest.mark.parametrize("name", sorted(set(PATTERNS) - {QUOTED_ITEM}))
def test_no_pattern_backtracks_on_10000_hostile_characters(name: str) -> None:
    pattern = PATTERNS[name]
    for text in hostile_strings(pattern):
        spent = cpu_seconds(pattern.search, text)
        assert spent < SEARCH_BOUND_S, (name, text[:40], text[-20:], spent)


def test_quoted_items_are_found_in_linear_time() -> None:
    pattern = PATTERNS[QUOTED_ITEM]
    strings = list(hostile_strings(pattern)) + [_fill("", piece, "") for piece in ("'x", "x'", '"')]
    for text in strings:
        spent = cpu_seconds(adding._quoted_items, text)
        assert spent < SEARCH_BOUND_S, (text[:40], spent)
    # It finds what findall finds, and leaves what sub leaves.
    for text in ("add 'milk' and \"eggs\"", "'Plan Sam's party', 'x'", "don't 'a' b'", "'x'x'y'"):
        want = ([m[1] for m in pattern.findall(text)], pattern.sub("", text))
        assert adding._quoted_items(text) == want


def test_the_issues_three_messages_are_parsed_at_once() -> None:
    for label, message in findings().items():
        spent = cpu_seconds(parser.parse_intent, message)
        assert spent < STEP_BOUND_S, (label, spent)
    # The lengths the issue measured, below the part of a message the parser reads.
    issue = ("ok!!" * 22 + " buy milk", "x " + "now " * 374 + "1", "delete task 1" + "1" * 40)
    for message in issue:
        assert len(message) <= cleaning.READ_MAX_CHARS
        spent = cpu_seconds(parser.parse_intent, message)
        assert spent < STEP_BOUND_S, (message[:20], spent)


def test_a_model_step_on_any_hostile_message_ends_at_once() -> None:
    """One model step (read the conversation, parse, plan) in a conversation that has just
    added a task, on the bench's adversarial messages (one in 13 of them, the findings first)."""
    messages = list(findings().items()) + list(islice(adversarial_messages(), 3, None, 13))
    assert len(messages) > 1000
    for label, message in messages:
        assert len(message) == LENGTH
        items = ongoing_conversation(message)
        spent = cpu_seconds(planning.decide, items, ("add_task", "list_tasks"))
        assert spent < STEP_BOUND_S, (label, spent)


def test_only_the_first_part_of_a_long_message_is_read() -> None:
    limit = cleaning.READ_MAX_CHARS
    words = "buy milk " * (LENGTH // 9)
    part = cleaning.readable_part(words)
    assert len(part) <= limit and words.startswith(part) and words[len(part)] == " "
    assert cleaning.readable_part("x" * LENGTH) == "x" * limit
    assert cleaning.readable_part("short message") == "short message"
    # Ids are read from digits: a longer run than Python converts to an int would be a 500.
    assert limit < sys.get_int_max_str_digits()
    # A long message is answered, and the answer says what was read.
    step = planning.decide(ongoing_conversation("hello " * 2000), ("add_task",))
    assert isinstance(step, str) and step.endswith(f"first {limit:,} characters of your message.)")
    step = planning.decide(ongoing_conversation("hello"), ("add_task",))
    assert isinstance(step, str) and "characters of your message" not in step


async def test_hostile_messages_in_an_ongoing_chat_are_answered_at_once(client, user) -> None:
    """Through the real chat route: each message after a task was added, then a short follow-up
    that makes the model read it again as the previous message."""
    chat = user.url("/chat")
    r = await client.post(chat, json={"message": "add buy milk"}, headers=user.headers)
    assert r.status_code == 200
    conversation = r.json()["conversation_id"]
    messages = [
        *findings().values(),
        "ok!!" * 22 + " buy milk",
        "x " + "now " * 500 + "1",
        "delete task 1" + "1" * 30 + "x",
        _fill("change x from ", "from ", " 1"),
        _fill("", "\u2014 ", "?"),
    ]
    for message in messages:
        for text in (message, "yes"):
            body = {"message": text, "conversation_id": conversation}
            with cpu_alarm(TURN_BOUND_S):
                r = await client.post(chat, json=body, headers=user.headers)
            assert r.status_code == 200, (message[:30], r.text[:200])
            if len(text) > cleaning.READ_MAX_CHARS:
                assert r.json()["response"].endswith("characters of your message.)")
    assert (await client.get("/health/live")).status_code == 200
