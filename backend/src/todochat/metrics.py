"""Prometheus metrics of one app instance, served at `GET /metrics`.

Each app gets its own `CollectorRegistry`, so several apps in one process (tests, a worker
that hosts two) never share or double-register counters. Labels are bounded: route templates
(never raw paths), tool names, fixed outcome words; never a user id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Buckets in seconds: HTTP answers from 5 ms (task reads) to a full minute (slow model turns).
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_MODEL_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60)
_TOOL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

PoolReader = Callable[[], dict[str, int]]


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "todochat_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "todochat_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.chat_turns = Counter(
            "todochat_chat_turns",
            "Chat turns by outcome: ok, replayed, model_error, db_error, busy, error.",
            ["outcome"],
            registry=r,
        )
        self.tool_calls = Counter(
            "todochat_tool_calls",
            "Agent tool calls by tool and outcome (ok, error).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_latency = Histogram(
            "todochat_tool_call_duration_seconds",
            "Time of one agent tool call, by tool.",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=r,
        )
        self.model_latency = Histogram(
            "todochat_model_call_duration_seconds",
            "Time of one model call (one step of a turn).",
            buckets=_MODEL_BUCKETS,
            registry=r,
        )
        self.model_failures = Counter(
            "todochat_model_failures",
            "Turns the model upstream failed, by reason (exception type).",
            ["reason"],
            registry=r,
        )
        self.db_retries = Counter(
            "todochat_db_retries",
            "Units of work re-run after a transient database error.",
            registry=r,
        )
        self.db_errors = Counter(
            "todochat_db_errors",
            "Database failures by kind: unavailable (answered 503), commit_unknown.",
            ["kind"],
            registry=r,
        )
        self.db_slow_queries = Counter(
            "todochat_db_slow_queries",
            "Queries slower than DB_SLOW_MS.",
            registry=r,
        )
        self.rate_limited = Counter(
            "todochat_rate_limited",
            "Requests refused with 429, by scope (chat, task_write, auth).",
            ["scope"],
            registry=r,
        )
        self.rate_limit_fallback = Gauge(
            "todochat_rate_limit_fallback",
            "1 while Redis is configured but unreachable and limits are per instance.",
            registry=r,
        )
        self.idempotent_replays = Counter(
            "todochat_idempotent_replays",
            "Requests answered from a stored Idempotency-Key answer, by route template.",
            ["route"],
            registry=r,
        )
        self._pool_reader: PoolReader | None = None
        for field in ("size", "checked_in", "checked_out", "overflow"):
            gauge = Gauge(
                f"todochat_db_pool_{field}",
                f"Database connection pool: {field.replace('_', ' ')}.",
                registry=r,
            )
            gauge.set_function(self._pool_field(field))

    def _pool_field(self, field: str) -> Callable[[], float]:
        def read() -> float:
            return float(self._pool_reader()[field]) if self._pool_reader else 0.0

        return read

    def track_pool(self, reader: PoolReader | None) -> None:
        self._pool_reader = reader

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
