"""The HTTP edge: uvicorn's httptools protocol with a bounded request head and read time-outs.

uvicorn 0.54 with httptools limits neither the size nor the number of request headers (llhttp has
no limit, and httptools gathers an unfinished header in memory), and it has no time-out for reading
a request: a connection that sends its head or its body one byte at a time, or nothing at all, is
held for ever (issue 11, E1 in specs/decisions.md). This subclass adds, per connection:

- the request head (request line and headers) at most `max_header_bytes`, at most `max_headers`
  fields: 431, counted as the bytes arrive, so an unfinished head is refused at the limit;
- the head within `header_timeout_s` of its first byte (or of the connection, for the first
  request): 408;
- the body within `body_timeout_s` of the end of the head: 408.
- a request httptools cannot parse: 400, in JSON like the others (uvicorn's is plain text).

A refusal is a JSON answer with `Connection: close`; the connection is then half-closed and the
rest of what the client sends is read and dropped for at most `LINGER_S`, so that the client reads
the answer instead of a reset. Idle keep-alive connections stay uvicorn's (`timeout_keep_alive`).

It overrides uvicorn's `HttpToolsProtocol` hooks (data_received and the parser callbacks), which
are not a public API: uvicorn is pinned in pyproject.toml, and tests/security/test_http_edge.py
fails when the installed uvicorn is not the pinned one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from todochat.config import Settings
from todochat.middleware import SECURITY_HEADERS

log = logging.getLogger("todochat.edge")

# How long a refused connection is read and drained before it is closed.
LINGER_S = 2.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_timeout_s: float
    # uvicorn's own: an idle kept-alive connection is closed after this long.
    keepalive_timeout_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            keepalive_timeout_s=settings.http_keepalive_timeout_s,
        )


class _HeadRefused(Exception):
    """Raised from a parser callback: it stops the parse of this request at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # idle: no byte of the next request yet; head: reading its head; body: reading its body.
        self.phase: Literal["idle", "head", "body"] = "idle"
        # Bytes of the reads that left the head unfinished, and the size of the read being parsed.
        self.head_bytes = 0
        self.read_size = 0
        self.read_timer: asyncio.TimerHandle | None = None
        self.refused = False

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The first request's head is timed from the connection: one that never sends is closed.
        self._start_timer(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # lingering: drained, not parsed
        self._unset_keepalive_if_required()
        self.read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadRefused):
                self._refuse(431, exc.__context__.reason, self._header_detail())
            else:
                self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            # WebSockets are off (ws="none"): an upgrade request is served as plain HTTP.
            return
        # What this read left unfinished is timed from now, unless its timer already runs; a
        # request that arrives whole starts no timer at all.
        if self.phase == "head":
            # An unfinished head is measured by what was read, since httptools keeps a partial
            # line to itself: the whole read counts (a pipelined read may also hold the end of
            # the previous request: it then counts too, on the safe side).
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "header_too_large", self._header_detail())
            elif self.read_timer is None:
                self._start_timer(self.limits.header_timeout_s)
        elif self.phase == "body" and self.read_timer is None:
            self._start_timer(self.limits.body_timeout_s)

    def _invalid(self) -> None:
        # uvicorn answers a text/plain 400 and closes at once (a reset, when data is unread).
        self._refuse(400, "invalid_request", "Invalid HTTP request")

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.phase = "head"
        self.head_bytes = 0

    def on_headers_complete(self) -> None:
        # Raised here, the app is not started; the parser stops.
        if len(self.headers) > self.limits.max_headers:
            raise _HeadRefused("too_many_headers")
        if (
            self.head_bytes + self.read_size > self.limits.max_header_bytes
            and self._head_size() > self.limits.max_header_bytes
        ):
            raise _HeadRefused("header_too_large")
        if self.read_timer is not None:
            self._stop_timer()
        self.phase = "body"
        super().on_headers_complete()

    def _head_size(self) -> int:
        """The head as parsed: the target, the fields, a separator and a line end each."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_message_complete(self) -> None:
        if self.read_timer is not None:
            self._stop_timer()
        self.phase = "idle"
        super().on_message_complete()

    # Time-outs and refusals

    def _start_timer(self, delay: float) -> None:
        self._stop_timer()
        self.read_timer = self.loop.call_later(delay, self._on_read_timeout)

    def _stop_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _on_read_timeout(self) -> None:
        self.read_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # uvicorn stopped reading (a pipelined request waits, or the app has not taken the
            # body yet): the wait is the server's, not the client's.
            self._start_timer(
                self.limits.body_timeout_s if self.phase == "body" else self.limits.header_timeout_s
            )
            return
        if self.phase == "idle":
            # Nothing of a request arrived: an idle first connection is closed quietly; an
            # answer in progress is left to finish (keep-alive takes over after it).
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()
            return
        if self.phase == "head":
            self._refuse(408, "header_timeout", "Request header timeout")
        else:
            self._refuse(408, "body_timeout", "Request body timeout")

    def _header_detail(self) -> str:
        return (
            f"Request header fields too large (max {self.limits.max_header_bytes} bytes, "
            f"{self.limits.max_headers} fields)"
        )

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Ends the connection. Answers `status` with a JSON detail, then half-closes, drains for
        LINGER_S and closes; where that answer could be taken for another request's, closes at
        once instead. A request the app is still serving sees a disconnect."""
        self._stop_timer()
        self.refused = True
        cycle = self.cycle
        if self.phase == "body":
            # `cycle` is this request's: answer unless the app has begun to (a 413, say).
            can_answer = cycle is not None and not cycle.response_started
        else:
            # `cycle` is the previous request's, if any: answer only once it is answered.
            can_answer = cycle is None or cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._log(reason, status if can_answer else None)
        if not can_answer:
            self.transport.close()
            return
        body = json.dumps({"detail": detail}).encode()
        content = [STATUS_LINE[status]]
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
            (b"cache-control", b"no-store"),
        ]
        for name, value in headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", body])
        self.transport.write(b"".join(content))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _log(self, reason: str, status: int | None) -> None:
        log.info(
            "request refused",
            extra={"operation": "http.edge", "reason": reason, "status": status},
        )
