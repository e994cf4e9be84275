"""How an upstream's answer is read for a log line and a `Retry-After` (agent/upstream.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from todochat.agent.upstream import DEFAULT_RETRY_AFTER_S, MAX_RETRY_AFTER_S, excerpt, retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7),
        ({"retry-after": "0.2"}, 1),
        ({"retry-after": "2.5"}, 3),
        ({"retry-after-ms": "1500", "retry-after": "60"}, 2),
        ({"retry-after": "86400"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "-5"}, 1),
        ({"retry-after": "soon"}, DEFAULT_RETRY_AFTER_S),
        ({"retry-after": "nan"}, DEFAULT_RETRY_AFTER_S),
        ({}, DEFAULT_RETRY_AFTER_S),
    ],
)
def test_retry_after_is_the_upstreams_wait_bounded(headers: dict[str, str], expected: int) -> None:
    assert retry_after(headers) == expected


def test_retry_after_reads_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= retry_after({"retry-after": when}) <= 31


def test_an_excerpt_is_one_short_line_with_keys_masked() -> None:
    body = (
        '{"error": {"message": "Incorrect API key provided: sk-proj-abc123XYZ***9f.\\n'
        'Find your key at https://example.test", "key": "my-configured-secret"}}' + " x" * 500
    )
    text = excerpt(body, ("my-configured-secret",))
    assert "sk-proj" not in text and "abc123" not in text and "my-configured-secret" not in text
    assert "Incorrect API key provided: ***" in text
    assert "\n" not in text and len(text) <= 200
