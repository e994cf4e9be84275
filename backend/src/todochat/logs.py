"""JSON logs, one object a line, with the request's context attached to every record."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
conversation_id_var: ContextVar[int | None] = ContextVar("conversation_id", default=None)

_CONTEXT = (
    ("request_id", request_id_var),
    ("user_id", user_id_var),
    ("conversation_id", conversation_id_var),
)


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
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601 in UTC
        )
    )
    handler.addFilter(ContextFilter())
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
        ("openai", logging.WARNING),
        ("openai.agents", logging.WARNING),
        ("mcp", logging.WARNING),
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
