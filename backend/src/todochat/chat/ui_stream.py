"""A streamed turn in the Vercel AI SDK's UI message stream protocol (v1), as Server-Sent Events.

Each chunk is one `data: {json}` event: `start` (with the conversation id as message metadata),
then per model step `start-step` … `finish-step`, holding `text-start` / `text-delta` /
`text-end` and `tool-input-available` / `tool-output-available`; then `finish`, or `error` when
the turn failed after it began; then `data: [DONE]`. The `ai` package's `readUIMessageStream`
(and so `useChat`) assembles these into one assistant message (tests/chat/ai_sdk/).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from todochat.agent.events import StepStarted, TextDelta, ToolFinished, ToolStarted
from todochat.chat.service import Completed, Failed, Heartbeat, StreamedTurn

MEDIA_TYPE = "text/event-stream"
HEADERS = {
    "x-vercel-ai-ui-message-stream": "v1",
    "Cache-Control": "no-cache",
    # nginx buffers proxied answers unless told not to; a buffered stream arrives all at once.
    "X-Accel-Buffering": "no",
}
KEEP_ALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


def _chunk(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class _Encoder:
    """Turns events into chunks, opening and closing steps and text parts as the protocol
    wants them nested."""

    def __init__(self, conversation_id: int) -> None:
        self.metadata = {"conversationId": conversation_id}
        self.step_open = False
        # The model's id of the text item being streamed, and the id of its part here (model
        # ids are not unique: the chat-completions path gives every item the same one).
        self.text_id: str | None = None
        self.part_id = ""
        # The final step's text, to tell whether the reply was streamed as written.
        self.step_text: list[str] = []

    def start(self) -> list[bytes]:
        message_id = f"msg_{uuid.uuid4().hex}"
        return [
            _chunk({"type": "start", "messageId": message_id, "messageMetadata": self.metadata})
        ]

    def step(self) -> list[bytes]:
        out = self._close_step()
        self.step_open = True
        self.step_text = []
        return [*out, _chunk({"type": "start-step"})]

    def text(self, event: TextDelta) -> list[bytes]:
        out = [] if self.step_open else self.step()
        if event.text_id != self.text_id:
            out += self._close_text()
            self.text_id, self.part_id = event.text_id, f"txt_{uuid.uuid4().hex}"
            out.append(_chunk({"type": "text-start", "id": self.part_id}))
        self.step_text.append(event.delta)
        out.append(_chunk({"type": "text-delta", "id": self.part_id, "delta": event.delta}))
        return out

    def tool_input(self, event: ToolStarted) -> list[bytes]:
        out = [*([] if self.step_open else self.step()), *self._close_text()]
        out.append(
            _chunk(
                {
                    "type": "tool-input-available",
                    "toolCallId": event.call_id,
                    "toolName": event.name,
                    "input": event.arguments,
                }
            )
        )
        return out

    def tool_output(self, event: ToolFinished) -> list[bytes]:
        chunk = {"type": "tool-output-available", "toolCallId": event.call.id}
        return [_chunk({**chunk, "output": event.call.result})]

    def completed(self, event: Completed) -> list[bytes]:
        out: list[bytes] = []
        reply = event.response.response
        if "".join(self.step_text).strip() != reply:
            # The reply was not streamed as written (a fallback sentence, or the model's text
            # trimmed): the message ends with the reply the JSON turn gives.
            out += self.text(TextDelta(text_id=f"txt_{uuid.uuid4().hex}", delta=reply))
        out += self._close_step()
        out.append(_chunk({"type": "finish", "messageMetadata": self.metadata}))
        return out

    def failed(self, event: Failed) -> list[bytes]:
        return [
            *self._close_step(),
            _chunk({"type": "error", "errorText": event.detail}),
        ]

    def _close_text(self) -> list[bytes]:
        if self.text_id is None:
            return []
        self.text_id = None
        return [_chunk({"type": "text-end", "id": self.part_id})]

    def _close_step(self) -> list[bytes]:
        if not self.step_open:
            return []
        self.step_open = False
        return [*self._close_text(), _chunk({"type": "finish-step"})]


async def encode(turn: StreamedTurn) -> AsyncIterator[bytes]:
    encoder = _Encoder(turn.conversation_id)
    for chunk in encoder.start():
        yield chunk
    async for event in turn.events:
        if isinstance(event, Heartbeat):
            chunks = [KEEP_ALIVE]
        elif isinstance(event, StepStarted):
            chunks = encoder.step()
        elif isinstance(event, TextDelta):
            chunks = encoder.text(event)
        elif isinstance(event, ToolStarted):
            chunks = encoder.tool_input(event)
        elif isinstance(event, ToolFinished):
            chunks = encoder.tool_output(event)
        elif isinstance(event, Completed):
            chunks = [*encoder.completed(event), DONE]
        else:
            chunks = [*encoder.failed(event), DONE]
        # One write per event: a step's chunks reach the client together, and the last
        # event's with the end of the stream.
        yield b"".join(chunks)
