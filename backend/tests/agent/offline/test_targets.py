"""Targets of several tasks (`targets.parse_target`): everything, everything of one status,
and a run of ids."""

from __future__ import annotations

import pytest

from todochat.agent.offline.intent import Target
from todochat.agent.offline.targets import parse_target


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("all of them", Target(every=True)),
        ("everything on my list", Target(every=True)),
        ("my whole list", Target(every=True)),
        ("the list", Target(every=True)),
        ("the rest", Target(every=True)),
        ("the completed ones", Target(every=True, status="completed")),
        ("all the finished tasks", Target(every=True, status="completed")),
        ("every completed task", Target(every=True, status="completed")),
        ("everything I've done", Target(every=True, status="completed")),
        ("the ones that are done", Target(every=True, status="completed")),
        ("completed", Target(every=True, status="completed")),
        ("all my pending tasks", Target(every=True, status="pending")),
        ("the unfinished ones", Target(every=True, status="pending")),
        ("my tasks", Target(every=True)),
        ("tasks 3 to 6", Target(ids=(3, 4, 5, 6))),
        ("2-4", Target(ids=(2, 3, 4))),
    ],
)
def test_several_tasks_at_once(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("them", Target(ref=True)),  # the task just touched, not everything
        ("the tasks", Target(query="tasks")),  # no "all" and no status: not a bulk target
        ("1-100", Target(query="1-100")),  # a run longer than 50 ids is not meant
    ],
)
def test_what_is_not_a_bulk_target(text: str, target: Target) -> None:
    assert parse_target(text) == target
