"""Pure ASGI middleware: request id and access log, body size limit, security headers."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todochat.logs import conversation_id_var, request_id_var, user_id_var

access_log = logging.getLogger("todochat.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), microphone=(), camera=()"),
]
# JSON needs nothing. The pages (/docs, /playground) send their own policy, 'self' only.
_CSP = b"content-security-policy"
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"


_INTERNAL_ERROR_BODY = b'{"detail":"Internal server error"}'
_INTERNAL_ERROR_HEADERS = (
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
)
_INTERNAL_ERROR_START: Message = {"type": "http.response.start", "status": 500}


def _where(exc: BaseException) -> str:
    """The innermost frame as module:line, enough to find the bug without a stack trace."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    return f"{tb.tb_frame.f_globals.get('__name__', '?')}:{tb.tb_lineno}"


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Assigns the request id, echoes it, adds security headers and writes the access log."""

    def __init__(self, app: ASGIApp, *, on_finish: Any = None) -> None:
        self.app = app
        self.on_finish = on_finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else (uuid.uuid4().hex)
        )
        tokens = (
            request_id_var.set(request_id),
            user_id_var.set(None),
            conversation_id_var.set(None),
        )
        started = time.perf_counter()
        status = 500
        started_flag = [False]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                started_flag[0] = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.extend(SECURITY_HEADERS)
                if not any(name.lower() == _CSP for name, _ in headers):
                    headers.append((_CSP, _API_CSP))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Handled here, not re-raised: Starlette's outermost middleware would hand it to the
            # server, which logs a stack trace. We log the type and the place, nothing more.
            status = 500
            access_log.error(
                "unhandled error",
                extra={"error_type": type(exc).__name__, "where": _where(exc)},
            )
            if not started_flag[0]:
                await send_wrapper(
                    {**_INTERNAL_ERROR_START, "headers": list(_INTERNAL_ERROR_HEADERS)}
                )
                await send_wrapper({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            route = _route_template(scope)
            access_log.info(
                "request",
                extra={
                    "operation": "http.request",
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
            if self.on_finish is not None:
                self.on_finish(scope["method"], route, status, duration_ms / 1000)
            request_id_var.reset(tokens[0])
            user_id_var.reset(tokens[1])
            conversation_id_var.reset(tokens[2])


class BodySizeLimitMiddleware:
    """413 before the body is parsed: by Content-Length, or while streaming a chunked body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._reject(send)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        await _send_json(send, 413, _TooLarge.message(self.max_bytes))


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader re-raises it (it turns any other error
    into a 400) and the app's handler answers 413; raised outside FastAPI, caught above."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=self.message(max_bytes))

    @staticmethod
    def message(max_bytes: int) -> str:
        return f"Request body too large (max {max_bytes} bytes)"


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
