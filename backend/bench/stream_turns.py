"""Streamed turns as the `stream` scenario reads them.

A turn's answer (`Connection.stream`) is split into its Server-Sent Events, each stamped with
the time its last byte was read; the fake upstream's record of the same turn (its requests
carry the turn's unique user message) gives the upstream's own times on the same clock
(time.monotonic(): CLOCK_MONOTONIC, one clock for all processes of the machine). Together
they say how long the client waited for the first text beyond what the upstream took, and
where that time went.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from bench.loadgen import Connection, Streamed, json_body

DONE = b"[DONE]"


@dataclass
class Event:
    at: float  # time.monotonic() when the piece that completed it had been read
    data: bytes  # its `data:` lines' payload, joined by "\n"


def events(pieces: list[tuple[float, bytes]]) -> list[Event]:
    """The events of a Server-Sent Events body in arrival order; comments (`: keep-alive`)
    and events without data are left out. Lines end with "\\n", as ui_stream.py writes them."""
    out: list[Event] = []
    buffer = b""
    for at, piece in pieces:
        buffer += piece
        *complete, buffer = buffer.split(b"\n\n")
        for block in complete:
            data = [
                line[5:].removeprefix(b" ")
                for line in block.split(b"\n")
                if line.startswith(b"data:")
            ]
            if data:
                out.append(Event(at, b"\n".join(data)))
    return out


def is_complete(status: int, body: bytes) -> bool:
    """A turn that streamed to its end: 200, no `error` chunk, `[DONE]` last."""
    # Inside a JSON string the quotes would be escaped, so text cannot fake the error chunk.
    return status == 200 and body.endswith(b"data: [DONE]\n\n") and b'"type":"error"' not in body


@dataclass
class StreamTurn:
    """What the client saw of one streamed turn."""

    message: str
    sent: float
    status: int
    conversation_id: int | None = None
    # Arrival of each `text-delta` chunk, in order.
    deltas: list[float] = field(default_factory=list)
    error: bool = False
    done: bool = False

    @property
    def first_text(self) -> float | None:
        return self.deltas[0] if self.deltas else None


def read_turn(message: str, answer: Streamed) -> StreamTurn:
    turn = StreamTurn(message=message, sent=answer.sent, status=answer.status)
    if answer.status != 200:
        return turn
    for event in events(answer.pieces):
        if event.data == DONE:
            turn.done = True
            continue
        chunk = json.loads(event.data)
        kind = chunk.get("type")
        if kind == "text-delta":
            turn.deltas.append(event.at)
        elif kind == "start":
            turn.conversation_id = (chunk.get("messageMetadata") or {}).get("conversationId")
        elif kind == "error":
            turn.error = True
    return turn


class StreamUser:
    """One virtual user of the closed loop, chatting through the streamed route: a new
    conversation every `per_conversation` turns, its id taken from the `start` chunk. `last`
    is what it saw of its latest turn (None while one is under way or after one failed)."""

    def __init__(
        self,
        *,
        user_id: str,
        headers: bytes,
        message: Callable[[int], str],
        per_conversation: int,
    ) -> None:
        self.path = f"/api/{user_id}/chat/stream"
        self.headers = headers
        self.message = message
        self.per_conversation = per_conversation
        self.i = 0
        self.conversation_id: int | None = None
        self.last: StreamTurn | None = None

    async def __call__(self, conn: Connection) -> tuple[int, bytes]:
        self.last = None
        i = self.i
        self.i += 1
        if i % self.per_conversation == 0:
            self.conversation_id = None
        text = self.message(i)
        payload: dict[str, Any] = {"message": text}
        if self.conversation_id is not None:
            payload["conversation_id"] = self.conversation_id
        answer = await conn.stream("POST", self.path, headers=self.headers, body=json_body(payload))
        turn = read_turn(text, answer)
        if self.conversation_id is None:
            self.conversation_id = turn.conversation_id
        self.last = turn
        return answer.status, answer.body


@dataclass
class FirstText:
    """One turn's wait for its first text, taken apart (seconds)."""

    client: float  # request written -> first text-delta read
    upstream: float  # the upstream's own time before its first piece of text, every call
    to_first_call: float  # request written -> the upstream's first request arrives
    between_calls: float  # upstream answered -> its next request arrives, summed
    to_client: float  # the upstream sent the first piece -> the client read it
    # Each piece of text: the client read it minus the upstream sent it (empty when the
    # client got another number of pieces than the upstream sent).
    forwarding: list[float]
    client_gaps: list[float]  # between consecutive text-deltas at the client
    upstream_gaps: list[float]  # between consecutive pieces at the upstream

    @property
    def overhead(self) -> float:
        """What the client waited beyond the upstream: to_first_call + between_calls +
        to_client."""
        return self.client - self.upstream


def first_text(turn: StreamTurn, calls: list[dict[str, Any]]) -> FirstText | None:
    """`calls`: the fake's records of this turn's upstream requests (`/bench/streams`). None
    when the turn had no text or the upstream has no text answer for it."""
    calls = sorted(calls, key=lambda c: c["arrived"])
    text_at = next((k for k, c in enumerate(calls) if c["tokens"]), None)
    if turn.first_text is None or text_at is None:
        return None
    before, text = calls[:text_at], calls[text_at]
    # A tool-call answer is the upstream's time from arrival to its last byte; the text
    # answer's, from arrival to its first piece.
    upstream = sum(c["ended"] - c["arrived"] for c in before) + text["tokens"][0] - text["arrived"]
    chain = [*before, text]
    between = sum(b["arrived"] - a["ended"] for a, b in pairwise(chain))
    tokens: list[float] = text["tokens"]
    return FirstText(
        client=turn.first_text - turn.sent,
        upstream=upstream,
        to_first_call=chain[0]["arrived"] - turn.sent,
        between_calls=between,
        to_client=turn.first_text - tokens[0],
        # Piece k at the client is piece k upstream only if none was split or merged.
        forwarding=(
            [c - u for c, u in zip(turn.deltas, tokens, strict=True)]
            if len(turn.deltas) == len(tokens)
            else []
        ),
        client_gaps=[b - a for a, b in pairwise(turn.deltas)],
        upstream_gaps=[b - a for a, b in pairwise(tokens)],
    )
