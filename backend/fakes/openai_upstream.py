"""An OpenAI-compatible chat-completions server for tests and benchmarks, on 127.0.0.1.

Default policy (stateless, so any number of conversations can share it): when the last
message is the user's, answer with an `add_task` tool call whose title is the user's text;
once a tool result is in, answer with a short text. A turn therefore costs two upstream calls.
Tests can instead queue scripted replies, make it stall, fail with a status, or drop the
connection mid-answer, for every call or (as script entries: `fail()`, `stall()`, `drop()`)
for one call. It counts calls and the time it spent answering.

A request with `"stream": true` is answered as chat-completion chunks (Server-Sent Events): a
text in word-sized pieces, `first_token_s` before the first and `token_gap_s` between the
others; a tool call as one chunk per call. For each streamed answer it records when the
request arrived, when each piece of text was sent and when the answer ended (`/bench/streams`),
so a benchmark can take the upstream's own time out of what a client sees.

Modes that reproduce what real servers and imperfect models do (issue 14): `strict_strings`
answers 500 "Input should be a valid string" to a `null` or list content, as llama-cpp-python
does; `needs_tool_choice` never calls a tool unless the request names a `tool_choice`, as
llama-cpp-python reads a missing one as "none"; `models` and `models_status` shape
`GET /v1/models`; script entries `bad_arguments()` (argument text that is not JSON), `empty()`
(an answer with no text) and `fail(status, retry_after=..., body=...)`. There is no
`/v1/responses`: a client of the Responses API gets 404, as from most compatible servers.

Run standalone: `python -m fakes.openai_upstream --port 9100 --delay 0.5`; for streamed answers
`--first-token 0.3 --token-gap 0.02 --reply-words 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_ids = itertools.count(1)
DEFAULT_REPLY = "Done! I've taken care of that."


def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": [(name, arguments)]}


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": list(calls)}


def text(content: str) -> dict[str, Any]:
    return {"text": content}


def fail(
    status: int = 500, *, retry_after: str | None = None, body: str | None = None
) -> dict[str, Any]:
    """A scripted call that answers with an error status (and a `Retry-After`, a raw body)."""
    return {"fail_status": status, "retry_after": retry_after, "fail_body": body}


def bad_arguments(name: str, raw: str) -> dict[str, Any]:
    """A scripted tool call whose argument text is `raw`, as written (not JSON, say)."""
    return {"tool_calls": [(name, raw)]}


def empty() -> dict[str, Any]:
    """A scripted answer with no text and no tool call."""
    return {"text": ""}


def stall(seconds: float) -> dict[str, Any]:
    """A scripted call that waits this long, then answers by the default policy."""
    return {"stall_s": seconds}


def drop() -> dict[str, Any]:
    """A scripted call whose connection is cut in the middle of the answer."""
    return {"drop": True}


def failure(status: int) -> dict[str, Any]:
    """A scripted upstream error for one call (same as `fail`)."""
    return {"fail_status": status}


@dataclass
class StreamRecord:
    # The text of the request's last user message: what ties an answer to a client's turn.
    user: str
    arrived: float
    # When each piece of text had been handed to the connection; empty for a tool call.
    tokens: list[float] = field(default_factory=list)
    ended: float | None = None


@dataclass
class Behaviour:
    delay_s: float = 0.0
    fail_status: int | None = None
    drop_connection: bool = False
    script: deque[dict[str, Any]] = field(default_factory=deque)
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    record_requests: bool = False
    # Wall time of each answer (arrival to reply), so a benchmark can tell the delay it asked
    # for from the time the fake really took.
    service_s: list[float] = field(default_factory=list)
    # Streamed answers: the wait before the first piece of text, and between pieces.
    first_token_s: float = 0.0
    token_gap_s: float = 0.0
    # The default policy's text reply (after a tool result).
    reply_text: str = DEFAULT_REPLY
    # One record per streamed answer, in time.monotonic() seconds: CLOCK_MONOTONIC is one
    # clock for every process of the machine, so a client can set its own times against them.
    streams: list[StreamRecord] = field(default_factory=list)
    # Real servers' ways (see the module's docstring).
    strict_strings: bool = False
    needs_tool_choice: bool = False
    models: list[str] = field(default_factory=lambda: ["fake-model"])
    models_status: int | None = None
    # Requests being answered at once (to the end of `delay_s`), and the most at any time.
    in_flight: int = 0
    max_in_flight: int = 0


def _completion(model: str, reply: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if "tool_calls" in reply:
        message["tool_calls"] = [
            {
                "id": f"call_fake_{next(_ids)}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args in reply["tool_calls"]
        ]
        finish = "tool_calls"
    else:
        message["content"] = reply["text"]
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


def default_policy(messages: list[dict[str, Any]], *, reply: str = DEFAULT_REPLY) -> dict[str, Any]:
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return text(reply)
    title = (_text_of(last) or "Something")[:200]
    return tool_call("add_task", {"title": title})


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message)
    return ""


def words(n: int) -> str:
    """A reply of `n` words, streamed as `n` pieces of text."""
    return " ".join(f"word{i}" for i in range(1, n + 1))


class FakeUpstream:
    """A real HTTP server in a background thread with its own event loop."""

    def __init__(self, *, delay_s: float = 0.0, port: int = 0) -> None:
        self.behaviour = Behaviour(delay_s=delay_s)
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/bench/stats", self._stats, methods=["GET"]),
                Route("/bench/streams", self._streams, methods=["GET"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, _: Request) -> Response:
        b = self.behaviour
        if b.models_status is not None:
            return JSONResponse(
                {"error": {"message": "models unavailable", "type": "error"}},
                status_code=b.models_status,
            )
        return JSONResponse(
            {"object": "list", "data": [{"id": name, "object": "model"} for name in b.models]}
        )

    async def _stats(self, _: Request) -> Response:
        times = sorted(self.behaviour.service_s)

        def ms(q: float) -> float | None:
            return (
                round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 2) if times else None
            )

        return JSONResponse(
            {
                "calls": self.behaviour.calls,
                "service_ms_p50": ms(0.50),
                "service_ms_p95": ms(0.95),
                "service_ms_max": ms(1.0),
                "service_ms_mean": round(sum(times) / len(times) * 1000, 2) if times else None,
            }
        )

    async def _streams(self, _: Request) -> Response:
        return JSONResponse([asdict(r) for r in self.behaviour.streams])

    async def _chat(self, request: Request) -> Response:
        started = time.perf_counter()
        arrived = time.monotonic()
        b = self.behaviour
        b.in_flight += 1
        b.max_in_flight = max(b.max_in_flight, b.in_flight)
        try:
            return await self._answer(request, arrived)
        finally:
            b.in_flight -= 1
            b.service_s.append(time.perf_counter() - started)

    async def _answer(self, request: Request, arrived: float) -> Response:
        body = await request.json()
        b = self.behaviour
        b.calls += 1
        if b.record_requests:
            b.requests.append(body)
        reply = b.script.popleft() if b.script else None
        if reply is not None and "stall_s" in reply:
            await asyncio.sleep(reply["stall_s"])
            reply = None
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        entry = reply or {}
        fail_status = entry.get("fail_status", b.fail_status)
        if fail_status is not None:
            headers = {}
            if entry.get("retry_after") is not None:
                headers["Retry-After"] = str(entry["retry_after"])
            if entry.get("fail_body") is not None:
                return Response(
                    entry["fail_body"],
                    status_code=fail_status,
                    headers=headers,
                    media_type="application/json",
                )
            return JSONResponse(
                {"error": {"message": "upstream exploded", "type": "server_error"}},
                status_code=fail_status,
                headers=headers,
            )
        if b.strict_strings:
            for index, message in enumerate(body.get("messages", [])):
                if not isinstance(message.get("content"), str):
                    # What llama-cpp-python's server (pydantic behind it) answers.
                    return JSONResponse(
                        {
                            "error": {
                                "message": f"[{{'type': 'string_type', 'loc': ('body', "
                                f"'messages', {index}, 'content'), 'msg': 'Input should be "
                                "a valid string'}]",
                                "type": "internal_server_error",
                            }
                        },
                        status_code=500,
                    )
        if b.needs_tool_choice and body.get("tool_choice") in (None, "none") and reply is None:
            # A server that reads a missing tool_choice as "none" answers in words only.
            reply = text("Sure, I can help with that.")
        if (reply is not None and reply.get("drop")) or b.drop_connection:

            async def broken() -> Any:
                yield b'{"id": "chatcmpl-broken", "choi'
                raise ConnectionResetError("dropped on purpose")

            return StreamingResponse(broken(), media_type="application/json")
        messages = body.get("messages", [])
        if reply is None:
            reply = default_policy(messages, reply=b.reply_text)
        completion = _completion(body.get("model", "fake-model"), reply)
        if body.get("stream"):
            record = StreamRecord(user=_last_user_text(messages), arrived=arrived)
            b.streams.append(record)
            return StreamingResponse(
                self._chunks(completion, record), media_type="text/event-stream"
            )
        return JSONResponse(completion)

    async def _chunks(
        self, completion: dict[str, Any], record: StreamRecord
    ) -> AsyncIterator[bytes]:
        """The completion as a chat-completions stream, as OpenAI sends one. The times are
        taken when the generator resumes, i.e. once the piece before has been sent."""
        b = self.behaviour
        choice = completion["choices"][0]
        message = choice["message"]
        base = {k: completion[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps({**body, **extra}).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for index, call in enumerate(message.get("tool_calls") or []):
            yield chunk({"tool_calls": [{"index": index, **call}]})
        if message.get("content"):
            await asyncio.sleep(b.first_token_s)
            for number, piece in enumerate(re.findall(r"\S+\s*", message["content"])):
                if number and b.token_gap_s:
                    await asyncio.sleep(b.token_gap_s)
                yield chunk({"content": piece})
                record.tokens.append(time.monotonic())
        yield chunk({}, choice["finish_reason"])
        yield b"data: " + json.dumps({**base, "choices": [], "usage": completion["usage"]}).encode()
        yield b"\n\ndata: [DONE]\n\n"
        record.ended = time.monotonic()

    def start(self) -> FakeUpstream:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per call")
    parser.add_argument(
        "--first-token", type=float, default=0.0, help="streamed text: seconds to the first piece"
    )
    parser.add_argument(
        "--token-gap", type=float, default=0.0, help="streamed text: seconds between pieces"
    )
    parser.add_argument(
        "--reply-words",
        type=int,
        default=0,
        help="the default text reply: this many words (0: a short sentence)",
    )
    args = parser.parse_args()
    fake = FakeUpstream(delay_s=args.delay, port=args.port)
    fake.behaviour.first_token_s = args.first_token
    fake.behaviour.token_gap_s = args.token_gap
    if args.reply_words > 0:
        fake.behaviour.reply_text = words(args.reply_words)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
