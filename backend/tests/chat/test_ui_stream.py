"""The UI message stream encoder (chat/ui_stream.py): chunk order and nesting. The AI SDK's own
reader checks the same streams end to end in test_stream.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from todochat.agent.events import StepStarted, TextDelta, ToolFinished, ToolStarted
from todochat.chat.schemas import ChatResponse
from todochat.chat.service import Completed, Failed, Heartbeat, StreamedTurn, StreamEvent
from todochat.chat.ui_stream import encode
from todochat.conversations.schemas import ToolCall

CALL = ToolCall(id="call_1", name="add_task", arguments={"title": "Milk"}, result={"task_id": 4})


async def _chunks(events: list[StreamEvent]) -> list[Any]:
    async def source() -> AsyncIterator[StreamEvent]:
        for event in events:
            yield event

    raw = b"".join([chunk async for chunk in encode(StreamedTurn(7, source()))]).decode()
    out: list[Any] = []
    for block in raw.split("\n\n")[:-1]:
        if block.startswith(": "):
            out.append("keep-alive")
        elif block == "data: [DONE]":
            out.append("[DONE]")
        else:
            chunk = json.loads(block.removeprefix("data: "))
            out.append({k: v for k, v in chunk.items() if k not in ("id", "messageId")})
    return out


def _reply(text: str, calls: list[ToolCall]) -> Completed:
    return Completed(ChatResponse(conversation_id=7, response=text, tool_calls=calls))


async def test_steps_hold_text_and_tool_parts_in_the_order_they_happened() -> None:
    chunks = await _chunks(
        [
            StepStarted(),
            TextDelta(text_id="a", delta="Let me "),
            TextDelta(text_id="a", delta="add it. "),
            ToolStarted(call_id="call_1", name="add_task", arguments={"title": "Milk"}),
            ToolFinished(call=CALL),
            Heartbeat(),
            StepStarted(),
            TextDelta(text_id="a", delta="Added Milk."),
            _reply("Added Milk.", [CALL]),
        ]
    )
    assert chunks == [
        {"type": "start", "messageMetadata": {"conversationId": 7}},
        {"type": "start-step"},
        {"type": "text-start"},
        {"type": "text-delta", "delta": "Let me "},
        {"type": "text-delta", "delta": "add it. "},
        {"type": "text-end"},
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "add_task",
            "input": {"title": "Milk"},
        },
        {"type": "tool-output-available", "toolCallId": "call_1", "output": {"task_id": 4}},
        "keep-alive",
        {"type": "finish-step"},
        {"type": "start-step"},
        {"type": "text-start"},
        {"type": "text-delta", "delta": "Added Milk."},
        {"type": "text-end"},
        {"type": "finish-step"},
        {"type": "finish", "messageMetadata": {"conversationId": 7}},
        "[DONE]",
    ]


async def test_a_reply_that_was_not_streamed_as_written_ends_the_message() -> None:
    # The model said nothing: the turn's reply is the fallback sentence, sent as a last part.
    chunks = await _chunks([StepStarted(), _reply("Done.", [])])
    texts = [c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta"]
    assert texts == ["Done."]
    # A streamed reply is not repeated.
    chunks = await _chunks([StepStarted(), TextDelta(text_id="x", delta=" Hi "), _reply("Hi", [])])
    texts = [c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta"]
    assert texts == [" Hi "]


async def test_a_failure_closes_what_is_open_then_sends_the_error() -> None:
    chunks = await _chunks(
        [StepStarted(), TextDelta(text_id="a", delta="Work"), Failed("I'm having trouble")]
    )
    assert chunks[-4:] == [
        {"type": "text-end"},
        {"type": "finish-step"},
        {"type": "error", "errorText": "I'm having trouble"},
        "[DONE]",
    ]


async def test_text_parts_get_ids_of_their_own_even_when_the_model_reuses_one() -> None:
    async def source() -> AsyncIterator[StreamEvent]:
        for event in (
            StepStarted(),
            TextDelta(text_id="__fake_id__", delta="One."),
            StepStarted(),
            TextDelta(text_id="__fake_id__", delta="Two."),
            _reply("Two.", []),
        ):
            yield event

    raw = b"".join([c async for c in encode(StreamedTurn(7, source()))]).decode()
    starts = [json.loads(b[6:])["id"] for b in raw.split("\n\n") if '"text-start"' in b]
    assert len(starts) == 2 and len(set(starts)) == 2
