"""Completion written as a status or a checklist (`parser.parse_intent`)."""

from __future__ import annotations

import pytest

from todochat.agent.offline.intent import Intent, Target
from todochat.agent.offline.parser import parse_intent


@pytest.mark.parametrize(
    ("message", "query"),
    [
        ("taxes: done", "taxes"),
        ("gym \u2014 finished", "gym"),
        ("electricity bill - done \u2705", "electricity bill"),
        ("rent = paid", "rent"),
        ("\u2714 water the lawn", "water the lawn"),
        ("\u2714\ufe0f water the lawn", "water the lawn"),
        ("\u2713 Email Sarah", "Email Sarah"),
        ("[x] clean the fridge", "clean the fridge"),
        ("- [X] clean the fridge", "clean the fridge"),
        ("water the lawn \u2714", "water the lawn"),
        ("laundry \u2714 dishes \u2714", "laundry \u2714 dishes"),
        ("taxes -> done", "taxes"),
    ],
)
def test_a_status_or_a_check_mark_completes_the_task_it_names(message: str, query: str) -> None:
    assert parse_intent(message) == Intent("complete", target=Target(query=query))


@pytest.mark.parametrize("message", ["is the gym done?", "tasks: done", "what's done?"])
def test_questions_and_list_words_are_not_completions(message: str) -> None:
    assert parse_intent(message).kind != "complete"


@pytest.mark.parametrize(
    "message",
    [
        "mark all my tasks as done",
        "finish all tasks",
        "all tasks are done",
        "set all tasks to done",
        "I have finished all my tasks",
        "tick them all off",
        "mark the rest as done",
    ],
)
def test_completing_every_task(message: str) -> None:
    assert parse_intent(message) == Intent("complete", target=Target(every=True))


@pytest.mark.parametrize("message", ["completed tasks", "show completed tasks", "finished tasks?"])
def test_completed_tasks_alone_ask_for_the_list(message: str) -> None:
    assert parse_intent(message) == Intent("list", status="completed")
