"""Reading the conversation (`conversation.read_conversation`): what a bulk-delete question
named, and how many model steps of this turn called tools."""

from __future__ import annotations

from typing import Any

from todochat.agent.offline.conversation import read_conversation


def _history(reply: str) -> list[Any]:
    return [
        {"role": "user", "content": "delete everything"},
        {"role": "assistant", "content": [{"type": "output_text", "text": reply}]},
        {"role": "user", "content": "yes"},
    ]


def test_the_ids_come_from_after_the_last_question_only() -> None:
    reply = (
        "That would delete 7 tasks: 'Say yes to delete them (#99)', 'b' and 5 more. "
        "Are you sure? Say yes to delete them (#3, #4, #12), or no to keep them."
    )
    assert read_conversation(_history(reply)).bulk_ids == (3, 4, 12)


def test_a_reply_without_the_question_names_no_ids() -> None:
    assert read_conversation(_history("Deleted 2 tasks: 'a' (#3) and 'b' (#4).")).bulk_ids == ()
    broken = "Are you sure? Say yes to delete them (#3, #4"  # cut short: nothing is read
    assert read_conversation(_history(broken)).bulk_ids == ()


def test_steps_count_batches_of_calls_not_calls() -> None:
    def call(n: int) -> dict[str, Any]:
        return {"type": "function_call", "call_id": f"c{n}", "name": "add_task", "arguments": "{}"}

    def output(n: int) -> dict[str, Any]:
        return {"type": "function_call_output", "call_id": f"c{n}", "output": "{}"}

    items: list[Any] = [{"role": "user", "content": "add these: a, b, c"}]
    items += [call(1), call(2), call(3), output(1), output(2), output(3), call(4), output(4)]
    conv = read_conversation(items)
    assert conv.steps == 2
    assert len(conv.turn) == 4
