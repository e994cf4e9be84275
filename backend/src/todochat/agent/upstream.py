"""The model upstream: its failures told apart, and its last known state.

A failing model call is one of five things (M1 in specs/decisions.md). Four are temporary and
answer 503 with `Retry-After`: nothing listening (`unreachable`), no answer in time
(`timeout`), the upstream's own rate limit (`rate_limited`, its `Retry-After` honoured) and an
upstream error of its own (`overloaded`: 5xx, 408, 409, a cut connection, an answer that is no
answer). The fifth is permanent and answers 502: the upstream refused the request itself
(`misconfigured`: 401, 403, 404 for a wrong `OPENAI_API` or an unknown model, 400 or 422 for a
request shape it does not take). Retrying that would only fail again.

`UpstreamState` is what `/health` shows: the start-up probe's finding (`GET /models`), then the
outcome of the latest model call. It is never a model call of its own.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import openai

log = logging.getLogger("todochat.agent")

FailureKind = Literal["unreachable", "timeout", "rate_limited", "overloaded", "misconfigured"]

# The longest wait a 429 may ask of our clients, and the wait for the other temporary failures.
MAX_RETRY_AFTER_S = 600
DEFAULT_RETRY_AFTER_S = 10
EXCERPT_CHARS = 200
# What looks like a key in an upstream's answer ("Incorrect API key provided: sk-abc***xyz"):
# the prefix and a bounded run of key characters, so the pattern cannot backtrack.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_*.\-]{4,200}")


@dataclass(frozen=True)
class UpstreamFailure:
    """One failed model call, classified; `status`, `path` and `excerpt` are the upstream's."""

    kind: FailureKind
    error_type: str
    status: int | None = None
    path: str | None = None
    excerpt: str | None = None
    retry_after_s: int = DEFAULT_RETRY_AFTER_S

    @property
    def temporary(self) -> bool:
        return self.kind != "misconfigured"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def excerpt(text: str, secrets: tuple[str, ...] = ()) -> str:
    """The start of an upstream's answer, fit for a log line: one line, keys masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text[: EXCERPT_CHARS * 2].split())
    return _KEY_LIKE.sub("***", text)[:EXCERPT_CHARS]


def retry_after(headers: object) -> int:
    """The upstream's `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, bounded."""
    get = getattr(headers, "get", None)
    if get is None:
        return DEFAULT_RETRY_AFTER_S
    seconds: float | None = None
    try:
        if (ms := get("retry-after-ms")) is not None:
            seconds = float(ms) / 1000
        elif (value := get("retry-after")) is not None:
            try:
                seconds = float(value)
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                seconds = (when - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        seconds = None
    if seconds is None or seconds != seconds:  # absent, unreadable or NaN
        return DEFAULT_RETRY_AFTER_S
    return int(min(max(seconds, 1), MAX_RETRY_AFTER_S) + 0.999)


def _status_kind(status: int) -> FailureKind:
    if status == 429:
        return "rate_limited"
    if status >= 500 or status in (408, 409):
        return "overloaded"
    return "misconfigured"


def classify(exc: BaseException, *, secrets: tuple[str, ...] = ()) -> UpstreamFailure:
    """What a model call's exception (as raised through the Runner) says about the upstream."""
    for cause in _chain(exc):
        if isinstance(cause, openai.APIStatusError):
            response = cause.response
            try:
                body = response.text
            except Exception:  # a body that could not be read is no reason to fail here
                body = json.dumps(cause.body) if cause.body is not None else ""
            kind = _status_kind(cause.status_code)
            return UpstreamFailure(
                kind=kind,
                error_type=type(cause).__name__,
                status=cause.status_code,
                path=response.request.url.path,
                excerpt=excerpt(body, secrets),
                retry_after_s=retry_after(response.headers)
                if kind == "rate_limited"
                else DEFAULT_RETRY_AFTER_S,
            )
    for cause in _chain(exc):
        if isinstance(cause, openai.APIConnectionError):
            path = cause.request.url.path
            # The aiohttp transport reports a refused connection as a connect *time-out*; the
            # refusal (an OSError that is no time-out) is further down the chain.
            # The deepest such error is the system's own (ConnectionRefusedError, a DNS
            # failure), beneath the transport's wrappers.
            refusals = [
                c
                for c in _chain(cause)
                if isinstance(c, OSError) and not isinstance(c, TimeoutError)
            ]
            refused = refusals[-1] if refusals else None
            timed_out = isinstance(cause, openai.APITimeoutError) and refused is None
            return UpstreamFailure(
                kind="timeout" if timed_out else "unreachable",
                error_type=type(refused or cause).__name__,
                path=path,
            )
    if any(isinstance(c, TimeoutError) for c in _chain(exc)) or "Timeout" in type(exc).__name__:
        return UpstreamFailure(kind="timeout", error_type=type(exc).__name__)
    # The SDK's ModelBehaviorError and kin: an answer cut short or not a usable answer.
    return UpstreamFailure(kind="overloaded", error_type=type(exc).__name__)


UpstreamStatus = Literal[
    "ok", "unknown", "unreachable", "model_missing", "failing", "misconfigured"
]


@dataclass
class UpstreamState:
    """The model upstream's last known state, for `/health`."""

    status: UpstreamStatus = "unknown"
    detail: str | None = None
    checked_at: datetime | None = None

    def set(self, status: UpstreamStatus, detail: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.checked_at = datetime.now(UTC)

    def record_failure(self, failure: UpstreamFailure) -> None:
        if failure.kind == "misconfigured":
            self.set("misconfigured", describe(failure))
        elif failure.kind == "unreachable":
            self.set("unreachable", describe(failure))
        else:
            self.set("failing", describe(failure))


def describe(failure: UpstreamFailure) -> str:
    """One line for logs and /health: what broke, without the upstream's words."""
    if failure.status is not None:
        return f"{failure.kind}: HTTP {failure.status} on {failure.path}"
    return f"{failure.kind}: {failure.error_type}"


async def probe(
    client: openai.AsyncOpenAI, *, model: str, timeout_s: float, state: UpstreamState
) -> None:
    """Ask the upstream once for its models (`GET /models`) and say plainly what it found."""
    secrets = (client.api_key,) if client.api_key else ()
    try:
        page = await client.models.list(timeout=timeout_s)
    except Exception as exc:
        failure = classify(exc, secrets=secrets)
        if failure.status == 404:
            # Some servers (and proxies) serve completions without a model list: nothing to learn.
            state.set("unknown", "the upstream has no model list (GET /models: 404)")
            log.warning(
                "model upstream check: no model list",
                extra={"operation": "agent.probe", "upstream_path": failure.path},
            )
            return
        state.record_failure(failure)
        level = logging.ERROR if failure.kind == "misconfigured" else logging.WARNING
        log.log(
            level,
            f"model upstream check failed ({failure.kind})",
            extra={
                "operation": "agent.probe",
                "outcome": failure.kind,
                "error_type": failure.error_type,
                "upstream_status": failure.status,
                "upstream_path": failure.path,
                "upstream_body": failure.excerpt,
            },
        )
        return
    names = [m.id for m in page.data]
    if model in names:
        state.set("ok", None)
        log.info(
            f"model upstream check: model {model} is served",
            extra={"operation": "agent.probe", "outcome": "ok"},
        )
        return
    shown = ", ".join(names[:10]) or "none"
    state.set("model_missing", f"model {model} is not among the upstream's models ({shown})")
    # A warning, not an error: a server of one model (llama.cpp) answers to any model name.
    log.warning(
        f"model upstream check: model {model} is not listed; the upstream lists: {shown}",
        extra={"operation": "agent.probe", "outcome": "model_missing"},
    )
