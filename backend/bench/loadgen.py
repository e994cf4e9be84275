"""A small closed-loop HTTP/1.1 load generator on asyncio streams.

Each virtual user keeps one keep-alive connection and sends its next request as soon as the
previous answer is in (a closed loop, like wrk's connections). The client is deliberately thin
(no httpx, no header objects): on a 2-core machine every millisecond the load generator spends
is taken from the server it measures. It was cross-checked against wrk (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

REQUEST_TIMEOUT_S = 120.0


class HttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1."""


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, *, headers: bytes = b"", body: bytes | None = None
    ) -> tuple[int, bytes]:
        """Send one request; `headers` are ready-made `Name: value\\r\\n` lines."""
        reader = await self._send(method, path, headers, body)
        status, length, chunked, keep_alive = await self._head(reader)
        if chunked:
            payload = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                payload += await reader.readexactly(size + 2)
                if size == 0:
                    break
                del payload[-2:]
            data = bytes(payload)
        else:
            data = await reader.readexactly(length or 0)
        if not keep_alive:
            self.close()
        return status, data

    async def stream(
        self, method: str, path: str, *, headers: bytes = b"", body: bytes | None = None
    ) -> Streamed:
        """Send one request and read its answer as it comes: each piece of a chunked body is
        stamped with the time.monotonic() at which it had been read."""
        sent = time.monotonic()
        reader = await self._send(method, path, headers, body)
        status, length, chunked, keep_alive = await self._head(reader)
        answer = Streamed(status=status, sent=sent)
        try:
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    piece = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    answer.pieces.append((time.monotonic(), piece[:-2]))
            else:
                answer.pieces.append((time.monotonic(), await reader.readexactly(length or 0)))
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise HttpError("connection closed in the middle of the answer") from exc
        if not keep_alive:
            self.close()
        return answer

    async def _send(
        self, method: str, path: str, headers: bytes, body: bytes | None
    ) -> asyncio.StreamReader:
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self._host_header + headers
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        writer.write(head + b"\r\n" + (body or b""))
        return reader

    async def _head(self, reader: asyncio.StreamReader) -> tuple[int, int | None, bool, bool]:
        """The status line and headers: status, Content-Length, chunked, keep-alive."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HttpError("connection closed before the answer") from exc
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            self.close()
            raise HttpError(f"bad status line {lines[0]!r}") from exc
        length: int | None = None
        chunked, keep_alive = False, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
        return status, length, chunked, keep_alive


@dataclass
class Streamed:
    """An answer read as it came (`Connection.stream`)."""

    status: int
    # time.monotonic() just before the request was written.
    sent: float
    # (time.monotonic() when read, bytes) for each piece of the body, in order.
    pieces: list[tuple[float, bytes]] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(piece for _, piece in self.pieces)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Sample:
    started: float
    latency_s: float
    ok: bool
    status: int
    extra: Any = None


@dataclass
class RunResult:
    samples: list[Sample] = field(default_factory=list)
    window_s: float = 0.0
    all_completed: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    client_cpu_s: float = 0.0

    @property
    def ok_latencies_ms(self) -> list[float]:
        return sorted(s.latency_s * 1000 for s in self.samples if s.ok)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    def summary(self) -> dict[str, Any]:
        lat = self.ok_latencies_ms
        return {
            "turns": len(self.samples),
            "errors": self.errors,
            "p50_ms": round(percentile(lat, 50), 2),
            "p95_ms": round(percentile(lat, 95), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "turns_per_s": round(len(self.samples) / self.window_s, 1) if self.window_s else 0.0,
        }


# A virtual user is a coroutine factory: given its connection, send one request and return
# (status, body). It keeps whatever state it needs (conversation id, step) in its closure.
Step = Callable[[Connection], Awaitable[tuple[int, bytes]]]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(
    *,
    host: str,
    port: int,
    users: list[Step],
    warmup_s: float = 0.0,
    ramp_s: float = 0.0,
    duration_s: float | None = None,
    total: int | None = None,
    on_complete: Callable[[int], None] | None = None,
    check: Callable[[int, bytes], bool] | None = None,
    mark: Callable[[str], None] | None = None,
    details: Callable[[int], Any] | None = None,
) -> RunResult:
    """Run every virtual user in a closed loop.

    Requests that complete inside the measurement window [warm-up end, warm-up end + duration]
    are measured; with `total`, the run stops after that many requests (after warm-up) and the
    window is the time they took. Requests still in flight at the end are awaited, not counted.
    No new request starts after the window. `mark("start")` and `mark("end")` are called at the
    window's edges, for readings such as the server's CPU time. With `details`, each measured
    sample's `extra` is `details(i)`, i the index of the user whose answer it is, called as
    soon as the answer is in (e.g. the timings that user's step kept of its last turn).

    With `ramp_s`, user i sends its first request i * ramp_s / len(users) after the start, as
    load tools ramp up (locust's spawn rate, k6's ramping VUs). Without it, users that all start
    at once against an upstream of fixed delay stay in lockstep: every turn of a wave arrives
    in the same millisecond, the server queues them all, then idles until the next wave, which
    is no traffic that real users make. The ramp must end inside the warm-up.
    """
    result = RunResult()
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + warmup_s
    window_end = window_start + duration_s if duration_s is not None else math.inf
    stop = asyncio.Event()
    measured = 0
    last_completion = window_start
    marked: set[str] = set()

    def edge(name: str) -> None:
        if mark is not None and name not in marked:
            marked.add(name)
            mark(name)

    loop.call_at(window_start, edge, "start")
    if duration_s is not None:
        loop.call_at(window_end, edge, "end")

    def is_ok(status: int, body: bytes) -> bool:
        return check(status, body) if check is not None else 200 <= status < 300

    async def user_loop(index: int, step: Step) -> None:
        nonlocal measured, last_completion
        conn = Connection(host, port)
        if ramp_s:
            await asyncio.sleep(index * ramp_s / len(users))
        try:
            while not stop.is_set():
                t0 = loop.time()
                if t0 >= window_end:
                    return
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        status, body = await step(conn)
                    ok = is_ok(status, body)
                    kind = None if ok else f"http_{status}"
                except (HttpError, OSError, TimeoutError) as exc:
                    conn.close()
                    status, ok, kind = 0, False, type(exc).__name__
                t1 = loop.time()
                result.all_completed += 1
                if kind is not None:
                    result.errors_by_kind[kind] = result.errors_by_kind.get(kind, 0) + 1
                # Counted by completion time: in a closed loop with long turns, the answers
                # that complete inside the window are its throughput.
                if window_start <= t1 <= window_end and not stop.is_set():
                    extra = details(index) if details is not None else None
                    result.samples.append(Sample(t0, t1 - t0, ok, status, extra))
                    measured += 1
                    last_completion = t1
                    if on_complete is not None:
                        on_complete(measured)
                    if total is not None and measured >= total:
                        edge("end")
                        stop.set()
        finally:
            conn.close()

    cpu0 = _cpu_s()
    await asyncio.gather(*(user_loop(i, u) for i, u in enumerate(users)))
    edge("start")
    edge("end")
    result.client_cpu_s = _cpu_s() - cpu0
    if duration_s is not None and total is None:
        result.window_s = duration_s
    else:
        result.window_s = max(last_completion - window_start, 1e-9)
    return result


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def bearer(token: str) -> bytes:
    return f"Authorization: Bearer {token}\r\n".encode()


def monotonic() -> float:
    return time.monotonic()
