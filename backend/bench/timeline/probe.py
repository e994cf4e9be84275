"""The turn timeline's probes, installed in a server worker by `bench.timeline.launch`.

Every chat turn (`POST .../chat`, `POST .../chat/stream`) carries a `Turn` in a context
variable from the moment the app is called; the probes add timed spans to it:

- `http.send`: each ASGI `send` of the answer (uvicorn writing it);
- `db.checkout` (`Pool.connect`: a connection handed out, waits for a free one included),
  `db.statement` (SQLAlchemy's cursor events: sent to rows back, BEGIN included in a unit's
  first), `db.commit` (the commit event to the connection's check-in), `db.unit` (checkout to
  check-in: the connection held);
- the Agents SDK's own spans through a trace processor: `sdk.agent` (a Runner run),
  `sdk.generation` / `sdk.response` (a model call as the SDK sees it), `sdk.function` (a tool);
- the model's HTTP calls through an aiohttp `TraceConfig`: `model.connect` (request start to a
  connection: pool queue, new connection), `model.send` (to the request's headers sent),
  `model.wait` (to the answer's headers, i.e. the upstream's time to answer).

Beside the turns, a probe task measures the worker's event loop: it sleeps `PROBE_S` and
records every wake-up that came late, with the thread CPU time spent meanwhile, so that a wait
can be told apart as "the loop was busy with other work" (CPU in this worker) or "the worker
was not running" (the machine's other processes).

Every record is appended to `$BENCH_TIMELINE_DIR/<pid>.jsonl` by the probe task, once a second.
Times are `time.monotonic()`, one clock for every process of the machine.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from bench.timeline.patches import patch_sdk

PROBE_S = 0.002
# A wake-up later than this is counted as the loop busy (uvloop's timers have 1 ms steps).
LATE_S = 0.0015
CHAT_PATH = re.compile(r"^/api/[^/]{1,200}/chat(?:/stream)?$")

Span = tuple[str, float, float]


class Turn:
    __slots__ = (
        "commit_t0",
        "end",
        "first_text",
        "path",
        "spans",
        "start",
        "status",
        "tasks",
        "unit_t0",
    )

    def __init__(self, path: str, start: float) -> None:
        self.path = path
        self.start = start
        self.end = 0.0
        self.status = 0
        self.first_text = 0.0
        self.spans: list[Span] = []
        self.unit_t0 = 0.0
        self.commit_t0 = 0.0
        # Tasks the turn started, by coroutine: each is at least one more pass of the loop.
        self.tasks: dict[str, int] = {}

    def record(self) -> dict[str, Any]:
        return {
            "kind": "turn",
            "stream": self.path.endswith("/stream"),
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "first_text": self.first_text or None,
            "spans": self.spans,
            "tasks": self.tasks,
        }


TURN: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("bench_turn", default=None)


class Recorder:
    def __init__(self, directory: Path) -> None:
        self.path = directory / f"{os.getpid()}.jsonl"
        self.pending: list[dict[str, Any]] = []
        self.probe: asyncio.Task[None] | None = None

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(record)

    def flush(self) -> None:
        if not self.pending:
            return
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in self.pending)
        self.pending.clear()
        with self.path.open("a") as f:
            f.write(lines)

    def ensure_probe(self) -> None:
        if self.probe is None:
            loop = asyncio.get_running_loop()
            loop.set_task_factory(_counting_task)
            self.probe = loop.create_task(self._probe())

    async def _probe(self) -> None:
        last_flush = time.monotonic()
        while True:
            t0 = time.monotonic()
            c0 = time.thread_time()
            await asyncio.sleep(PROBE_S)
            t1 = time.monotonic()
            late = t1 - t0 - PROBE_S
            if late > LATE_S:
                self.add(
                    {"kind": "late", "t0": t0 + PROBE_S, "t1": t1, "cpu": time.thread_time() - c0}
                )
            if t1 - last_flush > 1.0:
                self.flush()
                last_flush = t1


RECORDER: Recorder | None = None
PATCH_ENV = "BENCH_TIMELINE_PATCH"


def _counting_task(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    turn = TURN.get() if kwargs.get("context") is None else kwargs["context"].get(TURN)
    if turn is not None:
        name = getattr(coro, "__qualname__", type(coro).__name__)
        turn.tasks[name] = turn.tasks.get(name, 0) + 1
    return asyncio.Task(coro, loop=loop, **kwargs)


def _span(kind: str, t0: float, t1: float) -> None:
    turn = TURN.get()
    if turn is not None:
        turn.spans.append((kind, t0, t1))


# --------------------------------------------------------------------------------------------
# The app: a turn starts when Starlette is called and ends with the answer's last byte sent.
# --------------------------------------------------------------------------------------------


def _install_asgi(recorder: Recorder) -> None:
    from starlette.applications import Starlette

    original = Starlette.__call__

    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not CHAT_PATH.match(scope["path"])
        ):
            return await original(self, scope, receive, send)
        recorder.ensure_probe()
        turn = Turn(scope["path"], time.monotonic())

        async def timed_send(message: Any) -> None:
            t0 = time.monotonic()
            kind = message["type"]
            if kind == "http.response.start":
                turn.status = message["status"]
            elif (
                kind == "http.response.body"
                and not turn.first_text
                and b'"text-delta"' in message.get("body", b"")
            ):
                turn.first_text = t0
            await send(message)
            t1 = time.monotonic()
            turn.spans.append(("http.send", t0, t1))
            if kind == "http.response.body" and not message.get("more_body", False):
                turn.end = t1
                recorder.add(turn.record())

        token = TURN.set(turn)
        try:
            await original(self, scope, receive, timed_send)
        finally:
            TURN.reset(token)

    Starlette.__call__ = call  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------


def _install_sqlalchemy() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    original_connect = Pool.connect

    def connect(self: Any) -> Any:
        t0 = time.monotonic()
        try:
            return original_connect(self)
        finally:
            t1 = time.monotonic()
            turn = TURN.get()
            if turn is not None:
                turn.spans.append(("db.checkout", t0, t1))
                turn.unit_t0 = t0

    Pool.connect = connect  # type: ignore[method-assign]

    @event.listens_for(Engine, "before_cursor_execute")
    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info["bench_t0"] = time.monotonic()

    @event.listens_for(Engine, "after_cursor_execute")
    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        t0 = conn.info.pop("bench_t0", None)
        if t0 is not None:
            _span("db.statement", t0, time.monotonic())

    @event.listens_for(Engine, "commit")
    def commit(conn: Any) -> None:
        turn = TURN.get()
        if turn is not None:
            turn.commit_t0 = time.monotonic()

    @event.listens_for(Engine, "rollback")
    def rollback(conn: Any) -> None:
        commit(conn)

    @event.listens_for(Pool, "checkin")
    def checkin(dbapi_connection: Any, record: Any) -> None:
        turn = TURN.get()
        if turn is None:
            return
        t1 = time.monotonic()
        if turn.commit_t0:
            turn.spans.append(("db.commit", turn.commit_t0, t1))
            turn.commit_t0 = 0.0
        if turn.unit_t0:
            turn.spans.append(("db.unit", turn.unit_t0, t1))
            turn.unit_t0 = 0.0


# --------------------------------------------------------------------------------------------
# The Agents SDK (its public trace processors) and the model's HTTP calls (aiohttp TraceConfig)
# --------------------------------------------------------------------------------------------


def _install_agents() -> None:
    from agents import set_trace_processors
    from agents.tracing import Span as SdkSpan
    from agents.tracing import Trace, TracingProcessor

    class Timeline(TracingProcessor):
        """Only ours: the default processor would export the spans to OpenAI."""

        def __init__(self) -> None:
            self.started: dict[str, float] = {}

        def on_trace_start(self, trace: Trace) -> None:
            pass

        def on_trace_end(self, trace: Trace) -> None:
            pass

        def on_span_start(self, span: SdkSpan[Any]) -> None:
            self.started[span.span_id] = time.monotonic()

        def on_span_end(self, span: SdkSpan[Any]) -> None:
            t0 = self.started.pop(span.span_id, None)
            if t0 is not None:
                _span(f"sdk.{span.span_data.type}", t0, time.monotonic())

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    set_trace_processors([Timeline()])


def _install_aiohttp() -> None:
    import aiohttp

    trace = aiohttp.TraceConfig()

    async def start(session: Any, ctx: Any, params: Any) -> None:
        ctx.t0 = time.monotonic()
        ctx.conn = 0.0
        ctx.sent = 0.0

    async def connected(session: Any, ctx: Any, params: Any) -> None:
        ctx.conn = time.monotonic()

    async def headers_sent(session: Any, ctx: Any, params: Any) -> None:
        ctx.sent = time.monotonic()

    async def end(session: Any, ctx: Any, params: Any) -> None:
        t = time.monotonic()
        conn = ctx.conn or ctx.t0
        sent = ctx.sent or conn
        _span("model.connect", ctx.t0, conn)
        _span("model.send", conn, sent)
        _span("model.wait", sent, t)

    trace.on_request_start.append(start)
    trace.on_connection_reuseconn.append(connected)
    trace.on_connection_create_end.append(connected)
    trace.on_request_headers_sent.append(headers_sent)
    trace.on_request_end.append(end)
    trace.freeze()

    original = aiohttp.ClientSession.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or []), trace]
        original(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]

    # The answer's body, read by the openai client through its vendored httpx-over-aiohttp
    # transport (no public hook: aiohttp traces only whole-body reads): each wait for the
    # next piece is `model.read`, the upstream's time between pieces plus the loop's.
    from openai._vendor.httpx_aiohttp import transport

    original_iter = transport.AiohttpResponseStream.__aiter__

    async def timed_iter(self: Any) -> Any:
        pieces = original_iter(self)
        while True:
            t0 = time.monotonic()
            try:
                chunk = await pieces.__anext__()
            except StopAsyncIteration:
                _span("model.read", t0, time.monotonic())
                return
            _span("model.read", t0, time.monotonic())
            yield chunk

    transport.AiohttpResponseStream.__aiter__ = timed_iter  # type: ignore[method-assign]


def _install_lanes() -> None:
    """The wait for a lane (P19): at a turn's start and after each model call."""
    from todochat import lanes

    original = lanes._Hold.take

    async def take(self: Any) -> None:
        t0 = time.monotonic()
        try:
            await original(self)
        finally:
            _span("lane.wait", t0, time.monotonic())

    lanes._Hold.take = take  # type: ignore[method-assign]


def install(directory: str) -> None:
    """Installs every probe in this process (a server worker)."""
    global RECORDER
    patch_sdk(os.environ.get(PATCH_ENV, ""))
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    RECORDER = Recorder(path)
    _install_asgi(RECORDER)
    _install_sqlalchemy()
    _install_agents()
    _install_aiohttp()
    _install_lanes()
