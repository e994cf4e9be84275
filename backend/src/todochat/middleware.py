"""Pure ASGI middleware, one concern each, outermost first: the request's context (id and log
context), the access log and request metrics, the security headers, the last-resort 500, and
the body size limit."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todochat.logs import conversation_id_var, request_id_var, user_id_var
from todochat.schemas import error_response

access_log = logging.getLogger("todochat.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), microphone=(), camera=()"),
]
_CSP = b"content-security-policy"
_CACHE_CONTROL = b"cache-control"
# JSON needs nothing. The pages (/docs, /playground) send their own policy, 'self' only.
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"

RequestObserver = Callable[[str, str, int, float], None]


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _where(exc: BaseException) -> str:
    """The innermost frame as module:line, enough to find the bug without a stack trace."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    return f"{tb.tb_frame.f_globals.get('__name__', '?')}:{tb.tb_lineno}"


class RequestContextMiddleware:
    """Gives each request an id (the client's `X-Request-ID` if sane), echoes it, and binds it
    (and later the user and conversation) to the log records of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        )
        tokens = (
            request_id_var.set(request_id),
            user_id_var.set(None),
            conversation_id_var.set(None),
        )
        echoed = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(tokens[0])
            user_id_var.reset(tokens[1])
            conversation_id_var.reset(tokens[2])


class AccessLogMiddleware:
    """One log line and one metrics observation per request: method, route template, status,
    duration."""

    def __init__(self, app: ASGIApp, *, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
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
            if self.observe is not None:
                self.observe(scope["method"], route, status, duration_ms / 1000)


class SecurityHeadersMiddleware:
    """Headers every answer carries; a response's own CSP or Cache-Control wins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(SECURITY_HEADERS)
                if _CSP not in present:
                    headers.append((_CSP, _API_CSP))
                if _CACHE_CONTROL not in present:
                    headers.append((_CACHE_CONTROL, b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_secured)


class InternalErrorMiddleware:
    """The last resort: an exception nobody handled becomes a JSON 500, logged by type and
    place. Handled here, not re-raised: Starlette's outermost middleware would hand it to the
    server, which logs a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            access_log.error(
                "unhandled error", extra={"error_type": type(exc).__name__, "where": _where(exc)}
            )
            if not started:
                await error_response(500, "Internal server error")(scope, receive, send)


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
                await self._reject(scope, receive, send)
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
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, _TooLarge.message(self.max_bytes))(scope, receive, send)


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader re-raises it (it turns any other error
    into a 400) and the app's handler answers 413; raised outside FastAPI, caught above."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=self.message(max_bytes))

    @staticmethod
    def message(max_bytes: int) -> str:
        return f"Request body too large (max {max_bytes} bytes)"
