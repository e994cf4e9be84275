"""JSON logs, one object a line, with the request's context attached to every record.

`timed` wraps a coroutine function and logs its duration with the request's context; it costs
two clock reads when the level is enabled and nothing else when it is not.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TextIO, TypeVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
conversation_id_var: ContextVar[int | None] = ContextVar("conversation_id", default=None)

_CONTEXT = (
    ("request_id", request_id_var),
    ("user_id", user_id_var),
    ("conversation_id", conversation_id_var),
)


P = ParamSpec("P")
R = TypeVar("R")

# Attribute names whose values never reach a log line, whoever passes them in `extra`.
_SENSITIVE = re.compile(r"pass(word)?|secret|token|authorization|api_?key|cookie", re.I)
# A token is looked for once per run of [\w-] characters, from its first "eyJ" (group 1 keeps what
# comes before it): trying every "eyJ" of a long run would scan the run again each time.
_JWT = re.compile(r"(?<![\w-])((?:(?!eyJ)[\w-])*+)eyJ[\w-]{5,}+\.[\w-]{5,}+\.[\w-]*+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"']+")
# SQLAlchemy puts the statement (and, unless hidden, its parameters) into exception text.
_SQL = re.compile(
    r"\[SQL: .*?(?=\(Background on this error|\n\nThe above exception|\n\nDuring handling|\Z)",
    re.S,
)
_REDACTED = "[redacted]"


def scrub(text: str) -> str:
    """Remove tokens and SQL from free text (exception messages, tracebacks)."""
    text = _JWT.sub(lambda m: m.group(1) + _REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + _REDACTED, text)
    return _SQL.sub("[SQL redacted] ", text)


class _Formatter(JsonFormatter):  # type: ignore[misc]
    """JSON lines; an exception a library logs (SQLAlchemy's pool, uvicorn) appears as its
    type alone: no stack trace and no message, which can hold SQL or user data."""

    def formatException(self, ei: Any) -> str:
        kind = ei[0] if ei and ei[0] is not None else None
        return f"{kind.__module__}.{kind.__qualname__}" if kind is not None else ""

    def formatStack(self, stack_info: str) -> str:
        return ""


class RedactFilter(logging.Filter):
    """Last line of defence: sensitive `extra` fields and tokens in messages are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(record.__dict__.items()):
            if (
                _is_sensitive(name)
                and value is not None
                and not isinstance(value, bool | int | float)
            ):
                setattr(record, name, _REDACTED)
        if isinstance(record.msg, str) and ("eyJ" in record.msg or "earer" in record.msg):
            record.msg = scrub(record.msg)
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@functools.lru_cache(maxsize=4096)
def _is_sensitive(name: str) -> bool:
    """Whether an attribute of a record is masked; names come from the code, so a few dozen in
    all, each searched once instead of on every record (a line has about 25 attributes)."""
    return name not in _STANDARD and _SENSITIVE.search(name) is not None


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn adds an ANSI-coloured copy of its message; it has no place in JSON logs.
        record.__dict__.pop("color_message", None)
        for name, var in _CONTEXT:
            if not hasattr(record, name):
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        return True


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """JSON lines on stdout, or on `stream` (stderr for `todochat mcp`, whose stdout is the
    protocol)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        _Formatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601 in UTC
        )
    )
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    handler.set_name("todochat")
    root = logging.getLogger()
    # Replace only our own handler: several apps may be created in one process (tests, workers),
    # and handlers others installed (pytest's capture) must survive.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "todochat"]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Our own access log replaces uvicorn's; library chatter stays at WARNING.
    for name, lvl in (
        ("uvicorn.access", logging.WARNING),
        ("httpx", logging.WARNING),
        # The openai client's HTTP library: one INFO line per model request otherwise, 2 of a
        # turn's 10 lines, each written on the event loop (issue 19).
        ("httpx2", logging.WARNING),
        ("openai", logging.WARNING),
        ("openai.agents", logging.WARNING),
        ("mcp", logging.WARNING),
        # Alembic's "Context impl" and "Will assume transactional DDL" at every start.
        ("alembic", logging.WARNING),
        ("httpcore", logging.WARNING),
    ):
        logging.getLogger(name).setLevel(lvl)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def bind(**values: Any) -> None:
    """Attach context to every later log line of the current request."""
    for name, var in _CONTEXT:
        if name in values:
            var.set(values[name])


def timed(
    operation: str, *, level: int = logging.INFO
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Log `operation`, `duration_ms` and `outcome` (ok, or the exception's type) of each call."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        logger = logging.getLogger(fn.__module__)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not logger.isEnabledFor(level):
                return await fn(*args, **kwargs)
            started = time.perf_counter()
            outcome = "ok"
            try:
                return await fn(*args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                logger.log(
                    level,
                    operation,
                    extra={
                        "operation": operation,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "outcome": outcome,
                    },
                )

        return wrapper

    return decorate
