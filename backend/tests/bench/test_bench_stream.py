"""The `stream` bench scenario's reading of a streamed turn: events split from the pieces as
they arrived, and the wait for the first text taken apart against the fake upstream's record."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest
from bench.loadgen import Streamed
from bench.stream_turns import events, first_text, is_complete, read_turn
from fakes.openai_upstream import FakeUpstream, words

START = b'data: {"type":"start","messageId":"m","messageMetadata":{"conversationId":7}}\n\n'
STEP = b'data: {"type":"start-step"}\n\n'
TOOL = b'data: {"type":"tool-input-available","toolCallId":"c","toolName":"add_task"}\n\n'


def delta(text: str) -> bytes:
    return b'data: {"type":"text-delta","id":"t","delta":"' + text.encode() + b'"}\n\n'


END = b'data: {"type":"finish-step"}\n\ndata: {"type":"finish"}\n\ndata: [DONE]\n\n'


def test_events_are_stamped_by_the_piece_that_completes_them() -> None:
    pieces = [
        (1.0, START + STEP[:10]),  # an event split across two pieces
        (2.0, STEP[10:] + b": keep-alive\n\n" + TOOL),  # a comment is not an event
        (3.0, b"data: line one\ndata:line two\n\n"),  # data lines join; one space is optional
        (4.0, b"data: [DONE]\n\ndata: {}"),  # an unfinished event is not one
    ]
    got = [(e.at, e.data) for e in events(pieces)]
    assert got == [
        (1.0, START[6:-2]),
        (2.0, STEP[6:-2]),
        (2.0, TOOL[6:-2]),
        (3.0, b"line one\nline two"),
        (4.0, b"[DONE]"),
    ]


def test_a_turn_is_read_from_its_chunks() -> None:
    answer = Streamed(status=200, sent=10.0)
    answer.pieces = [(10.01, START), (10.02, STEP + TOOL), (10.4, STEP + delta("Hi ")),
                     (10.42, delta("there")), (10.43, END)]  # fmt: skip
    turn = read_turn("hello", answer)
    assert (turn.conversation_id, turn.deltas, turn.done, turn.error) == (
        7,
        [10.4, 10.42],
        True,
        False,
    )
    assert is_complete(200, answer.body)
    failed = START + b'data: {"type":"error","errorText":"x"}\n\ndata: [DONE]\n\n'
    assert not is_complete(200, failed)
    assert read_turn("hello", Streamed(status=200, sent=0, pieces=[(1, failed)])).error
    # Text that reads like an error chunk is escaped inside its JSON string.
    assert is_complete(200, START + delta('\\"type\\":\\"error\\"') + END)
    assert not is_complete(200, START + delta("cut"))


def test_the_wait_for_the_first_text_is_taken_apart() -> None:
    answer = Streamed(status=200, sent=10.0)
    answer.pieces = [(10.01, START), (10.05, STEP + TOOL), (10.45, STEP + delta("a ")),
                     (10.47, delta("b ")), (10.5, delta("c") + END)]  # fmt: skip
    turn = read_turn("hello", answer)
    calls = [
        # The text answer first in the list: records are ordered by arrival.
        {"user": "hello", "arrived": 10.1, "tokens": [10.4, 10.42, 10.44], "ended": 10.45},
        {"user": "hello", "arrived": 10.02, "tokens": [], "ended": 10.03},
    ]
    f = first_text(turn, calls)
    assert f is not None
    assert f.client == pytest.approx(0.45)
    assert f.upstream == pytest.approx(0.01 + 0.3)  # the tool call's answer, then 300 ms
    assert f.to_first_call == pytest.approx(0.02)
    assert f.between_calls == pytest.approx(0.07)
    assert f.to_client == pytest.approx(0.05)
    assert f.overhead == pytest.approx(f.to_first_call + f.between_calls + f.to_client)
    assert f.forwarding == pytest.approx([0.05, 0.05, 0.06])
    assert f.client_gaps == pytest.approx([0.02, 0.03])
    assert f.upstream_gaps == pytest.approx([0.02, 0.02])
    # Pieces merged on the way: they cannot be paired one by one.
    merged = Streamed(status=200, sent=10.0, pieces=[(10.45, START + delta("a b c") + END)])
    g = first_text(read_turn("hello", merged), calls)
    assert g is not None and g.forwarding == [] and g.to_client == pytest.approx(0.05)
    # No text answer upstream, or no text at the client: nothing to time.
    assert first_text(turn, calls[1:]) is None
    assert first_text(read_turn("hello", Streamed(200, 10.0, [(10.1, START + END)])), calls) is None


async def test_the_fake_records_when_it_sent_each_piece() -> None:
    """What `first_text` sets the client's times against: per streamed answer, its turn's user
    message, its arrival, each piece of text and its end, on the client's clock."""
    fake = FakeUpstream().start()
    fake.behaviour.first_token_s, fake.behaviour.token_gap_s = 0.05, 0.01
    fake.behaviour.reply_text = words(3)
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as c:
            user = {"role": "user", "content": [{"type": "text", "text": "Plant 1-2"}]}
            tool = {"role": "tool", "tool_call_id": "call_1", "content": "{}"}
            for messages in ([user], [user, tool]):
                before = time.monotonic()
                r = await c.post(
                    "/chat/completions", json={"model": "m", "stream": True, "messages": messages}
                )
                assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
            r = await c.get(f"http://127.0.0.1:{fake.port}/bench/streams")
    finally:
        fake.stop()
    call, reply = r.json()
    assert call["user"] == reply["user"] == "Plant 1-2"
    assert call["tokens"] == [] and call["arrived"] <= call["ended"]
    assert before <= reply["arrived"]
    assert len(reply["tokens"]) == 3
    # The fake's loop (uvloop) keeps time in whole milliseconds: a sleep can end up to 1 ms early.
    assert reply["tokens"][0] - reply["arrived"] >= 0.05 - 0.001
    assert all(b - a >= 0.01 - 0.001 for a, b in itertools.pairwise(reply["tokens"]))
    assert reply["tokens"][-1] <= reply["ended"]
