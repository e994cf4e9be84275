"""How long the offline model takes to understand a hostile message (issue 11).

`adversarial_messages()` builds messages of the chat route's maximum length (10,000 characters)
from pieces that make regular expressions backtrack when repeated: the words the offline
model's patterns look for, punctuation, quotes, conjunctions, digits, other scripts, after the
openers that lead into its rules and before endings that make a match fail late. The issue's
three findings are among them. `worst_decide()` times one model step on each (`decide()`:
reading the conversation, parsing the message, planning), in a conversation that has just
added a task, as the chat route runs it. The security tests use the same messages.

    python -m bench --scenario parse
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from bench.harness import load_average
from todochat.agent.offline.cleaning import READ_MAX_CHARS
from todochat.agent.offline.planning import decide
from todochat.chat.schemas import MAX_MESSAGE_CHARS

TOOLS = ("add_task", "list_tasks", "complete_task", "delete_task", "update_task")

# What the patterns look for: fillers, auxiliaries and adverbs they repeat, task nouns, the
# keywords between a target and a new title, negations, conjunctions.
WORDS = (
    "ok", "ok!!", "okay", "oh", "so", "and", "also", "plus", "now", "already", "finally", "just",
    "is", "are", "has been", "got", "all", "the", "my", "a", "an", "it", "that", "task", "tasks",
    "item", "one", "todo", "list", "to", "from", "with", "description", "desc:", "title", "name",
    "should", "be", "say", "done", "not", "never", "yet", "need", "want to", "really", "please",
    "thanks", "thank you", "for me", "too", "as well", "mark", "delete", "add", "rename",
    "change", "remind me", "i", "we", "first", "last", "number", "no", "of", "on", "off",
    "instead", "then", "today", "bought", "watered", "then add", "also add", "every", "ones",
    "completed", "sorted", "paid", "rest",
)  # fmt: skip
PUNCTUATION = (
    "!", "!!", "?", ".", "..", ",", ";", ":", "-", " - ", "--", "\u2014", "->", "=>", "(", ")",
    "()", "'", '"', "'x", "x'", "'s", '"x"', "&", "#", "#1", "*", "\u2026", "1", "12", "1,",
    "1 and", "1st", "\u2714", "\u2714\ufe0f", "\u2705", "[x]", "=", ". ", ", then", "1-2",
)  # fmt: skip
SCRIPTS = ("日本語", "привет", "مرحبا", "é", "ß", "\U0001f642", "\u200b")
OPENERS = (
    "", "x ", "add ", "delete task ", "change x from ", "rename x ", "mark ", "the ",
    "i need to ", "i've just ", "task 1 should be ", "ok ", "fix the typo in ",
    "add a description to x ", "change the description of ", "\u2714 ", "clear ", "tick off ",
    "x: ", "add x, ",
)  # fmt: skip
ENDINGS = ("", "x", " 1", "?")


def _fill(opener: str, piece: str, ending: str, length: int) -> str:
    room = length - len(opener) - len(ending)
    return opener + (piece * (room // len(piece) + 1))[:room] + ending


def findings(length: int = MAX_MESSAGE_CHARS) -> dict[str, str]:
    """The issue's three messages, stretched to `length` characters."""
    return {
        "ok!!*N + buy milk": _fill("", "ok!!", " buy milk", length),
        "x + now*N + 1": _fill("x ", "now ", "1", length),
        "delete task + 1*N + x": _fill("delete task ", "1", "x", length),
    }


def adversarial_messages(length: int = MAX_MESSAGE_CHARS) -> Iterator[tuple[str, str]]:
    """(label, message) pairs, each message exactly `length` characters long."""
    yield from findings(length).items()
    for piece in WORDS + PUNCTUATION + SCRIPTS:
        for separator in ("", " "):
            for opener in OPENERS:
                for ending in ENDINGS:
                    label = f"{opener!r} + ({piece!r} + {separator!r})*N + {ending!r}"
                    yield label, _fill(opener, piece + separator, ending, length)


def ongoing_conversation(message: str) -> list[Any]:
    """The model's input for `message` sent right after a task was added: the state in which
    the "continuing" pattern reads the message as sent."""
    output = {"task_id": 1, "status": "created", "title": "Buy milk"}
    return [
        {"role": "user", "content": "add buy milk"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "add_task",
            "arguments": json.dumps({"title": "Buy milk"}),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": json.dumps(output)},
        {"role": "assistant", "content": "Done! I've added 'Buy milk' (task #1) to your list."},
        {"role": "user", "content": message},
    ]


def time_decide(message: str, repeat: int = 1) -> tuple[float, float]:
    """Seconds one model step takes on `message`, wall-clock and CPU: the least of `repeat`
    runs, as `timeit` reports (the step does the same work each time; other processes only
    add to it)."""
    items = ongoing_conversation(message)
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.thread_time()
        decide(items, TOOLS)  # type: ignore[arg-type]
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - w)
    return min(wall), min(cpu)


def worst_decide(length: int = MAX_MESSAGE_CHARS) -> dict[str, Any]:
    """Every message once, then the 20 slowest again, five times each."""
    messages = dict(adversarial_messages(length))
    first = {label: time_decide(message)[0] for label, message in messages.items()}
    slowest = sorted(first, key=first.__getitem__, reverse=True)[:20]
    again = {label: time_decide(messages[label], repeat=5) for label in slowest}
    worst = max(again, key=lambda label: again[label][0])
    ordered = sorted(first.values())
    return {
        "messages": len(messages),
        "message_chars": length,
        "worst_ms": round(again[worst][0] * 1000, 2),
        "worst_cpu_ms": round(again[worst][1] * 1000, 2),
        "worst_message": worst,
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "findings_ms": {
            label: round(time_decide(message, repeat=5)[0] * 1000, 2)
            for label, message in findings(length).items()
        },
    }


async def parse() -> dict[str, Any]:
    """The scenario: one model step on every adversarial message, in-process, one at a time."""
    load_before = load_average()
    out: dict[str, Any] = {"scenario": "parse", **worst_decide()}
    out["read_max_chars"] = READ_MAX_CHARS
    out["machine"] = {"load_avg_1m_before": load_before, "load_avg_1m_after": load_average()}
    out["target"] = {
        "what": "worst model step on a 10,000-character adversarial message < 10 ms",
        "value": out["worst_ms"],
        "met": out["worst_ms"] < 10,
    }
    return out
