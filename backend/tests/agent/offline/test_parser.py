"""The offline model's intent parser (`parse_intent`), a pure function: one message in, one
intent out. The acceptance suite checks whole conversations; these pin the parser's reading of
the contract's own phrasings."""

from __future__ import annotations

import pytest

from todochat.agent.offline.intent import Intent, NewTask, Target
from todochat.agent.offline.parser import parse_intent


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("add a task to buy groceries", Intent("add", new_tasks=(NewTask("Buy groceries"),))),
        ("remind me to call mom", Intent("add", new_tasks=(NewTask("Call mom"),))),
        ("what's pending?", Intent("list", status="pending")),
        ("show completed tasks", Intent("list", status="completed")),
        ("mark task 3 as done", Intent("complete", target=Target(ids=(3,)))),
        ("tasks 4 and 5 are done", Intent("complete", target=Target(ids=(4, 5)))),
        ("mark it as done", Intent("complete", target=Target(ref=True))),
        ("delete the meeting task", Intent("delete", target=Target(query="the meeting task"))),
        (
            "rename task 2 to Call the bank",
            Intent("update", target=Target(ids=(2,)), title="Call the bank"),
        ),
        ("I called mom", Intent("complete", target=Target(query="called mom"))),
        ("thanks!", Intent("thanks")),
    ],
)
def test_the_contracts_phrasings_read_as_intended(message: str, intent: Intent) -> None:
    assert parse_intent(message) == intent


def test_digits_followed_by_a_letter_are_words_not_an_id() -> None:
    # Once a pattern that backtracked exponentially on this input (issue 11).
    intent = parse_intent("delete task " + "1" * 25 + "x")
    assert intent.kind == "delete" and intent.target.ids == ()
    assert intent.target.query == "task " + "1" * 25 + "x"
