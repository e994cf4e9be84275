"""Several new tasks in one message (`parser.parse_intent`): quoted titles, comma lists of short
names, one request per sentence, one task verb per part, bullets; and what stays one task."""

from __future__ import annotations

import pytest

from todochat.agent.offline.parser import parse_intent


def _titles(message: str) -> list[str]:
    intent = parse_intent(message)
    assert intent.kind == "add", intent
    return [task.title for task in intent.new_tasks]


@pytest.mark.parametrize(
    ("message", "titles"),
    [
        (
            "put 'Ring the bank' and 'Pay the phone bill' on my list",
            ["Ring the bank", "Pay the phone bill"],
        ),
        ('add "A", "B" and also "C" please', ["A", "B", "C"]),
        ("add apples, pears and plums", ["Apples", "Pears", "Plums"]),
        ("add salt, pepper", ["Salt", "Pepper"]),
        ("add eggs, milk and flour to my shopping list", ["Eggs", "Milk", "Flour"]),
        ("Add 'A'. Then add 'B' too.", ["A", "B"]),
        ("add the oil change; then add the tyre check", ["The oil change", "The tyre check"]),
        ("add soap and also add towels", ["Soap", "Towels"]),
        ("add soap, and also towels", ["Soap", "Towels"]),
        (
            "Put 'Bake a cake' on my list. Also put 'Buy candles' on it.",
            ["Bake a cake", "Buy candles"],
        ),
        ("I need to phone the garage and book an MOT", ["Phone the garage", "Book an MOT"]),
        ("remind me to post the letter and to buy stamps", ["Post the letter", "Buy stamps"]),
        ("add:\n- milk\n- eggs\n- bread", ["Milk", "Eggs", "Bread"]),
        ("add milk & eggs & flour", ["Milk", "Eggs", "Flour"]),
        (
            "add a task to buy groceries and another to call mom",
            ["Buy groceries", "Call mom"],
        ),
        (
            "create a task to water the plants and one more task to feed the cat",
            ["Water the plants", "Feed the cat"],
        ),
    ],
)
def test_several_new_tasks_in_one_message(message: str, titles: list[str]) -> None:
    assert _titles(message) == titles


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("add bread and butter", "Bread and butter"),  # two names joined by "and" alone
        ("add salt & pepper", "Salt & pepper"),
        ("add buy flour, sugar and eggs", "Buy flour, sugar and eggs"),  # one verb for all
        ("add Dentist, Tuesday at 3", "Dentist, Tuesday at 3"),  # a long part is no list item
        ("add milk. thanks", "Milk"),  # the second sentence is no request
        ("add a task to buy milk and another brand of tea", "Buy milk and another brand of tea"),
    ],
)
def test_what_stays_one_task(message: str, title: str) -> None:
    assert _titles(message) == [title]


def test_a_second_request_of_another_kind_is_not_read_as_a_title() -> None:
    # One request per message (specs/chat.md): the part after "then" is not added as a task.
    assert _titles("add call mom. then show my list") == ["Call mom. then show my list"]
