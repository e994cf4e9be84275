"""Logs, timings, metrics and input limits, through the real app on both engines."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import TEST_SECRET, User, make_settings, openai_settings, start_app
from tests.faults import LogCapture
from todochat.logs import configure_logging

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
async def info_app(database_url):
    running = await start_app(make_settings(database_url, log_level="INFO"))
    try:
        yield running
    finally:
        await running.stop()


async def test_log_lines_are_json_with_context_and_timings_and_no_secrets(info_app) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    message = "add book the dentist appointment"
    with LogCapture() as logs:
        async with info_app.client() as c:
            r = await c.post(
                "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Ada"}
            )
            assert r.status_code == 201
            token = r.json()["access_token"]
            user_id = r.json()["user"]["id"]
            headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "trace-abc-123"}
            r = await c.post(f"/api/{user_id}/chat", json={"message": message}, headers=headers)
            assert r.status_code == 200
            assert r.headers["X-Request-ID"] == "trace-abc-123"
            conversation_id = r.json()["conversation_id"]
            r = await c.post(
                f"/api/{user_id}/tasks",
                json={"title": "Private title"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"},
            )
            generated = r.headers["X-Request-ID"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated)

    records = logs.records()  # every line parses as one JSON object
    assert len(records) == len(logs.text.splitlines())
    chat = [r for r in records if r.get("request_id") == "trace-abc-123"]
    access = next(r for r in chat if r.get("operation") == "http.request")
    assert access["route"] == "/api/{user_id}/chat" and access["method"] == "POST"
    assert access["status"] == 200 and access["duration_ms"] > 0
    assert access["user_id"] == user_id and access["conversation_id"] == conversation_id

    operations = {r.get("operation") for r in chat}
    # Service, agent (model and tools apart), repository-level units of work.
    assert {"conversations.start_turn", "agent.model", "agent.tool.add_task"} <= operations
    assert {"tasks.create", "conversations.finish_turn", "chat.turn"} <= operations
    tool_write = next(r for r in chat if r.get("operation") == "tasks.create")
    assert tool_write["user_id"] == user_id and tool_write["outcome"] == "ok"
    turn = next(r for r in chat if r.get("operation") == "chat.turn")
    assert turn["model_calls"] == 2 and turn["tool_calls"] == 1
    assert turn["model_ms"] > 0 and turn["tool_ms"] > 0 and turn["duration_ms"] > 0
    for record in chat:
        if "duration_ms" in record:
            assert isinstance(record["duration_ms"], int | float)

    task_lines = [r for r in records if r.get("request_id") == generated]
    assert any(r.get("operation") == "http.request" and r["status"] == 201 for r in task_lines)

    for secret in (PASSWORD, token, TEST_SECRET, message, "Private title", "Bearer "):
        assert secret not in logs.text


async def test_a_turn_over_openai_logs_its_model_calls_once_not_the_http_library(
    upstream, database_url
) -> None:
    running = await start_app(
        openai_settings(
            database_url,
            upstream.base_url,
            log_level="INFO",
        )
    )
    user = User()
    try:
        with LogCapture() as logs:
            async with running.client() as c:
                r = await c.post(
                    user.url("/chat"), json={"message": "water the plants"}, headers=user.headers
                )
                assert r.status_code == 200
    finally:
        await running.stop()
    records = logs.records()
    assert sum(r.get("operation") == "agent.model" for r in records) == 2
    assert [r for r in records if r.get("logger", "").startswith("httpx")] == []


async def test_repository_timings_are_logged_at_debug(client, user) -> None:
    repo_logger = logging.getLogger("todochat.tasks.repository")
    with LogCapture() as logs:
        repo_logger.setLevel(logging.DEBUG)
        try:
            r = await client.post(user.url("/tasks"), json={"title": "Timed"}, headers=user.headers)
            assert r.status_code == 201
        finally:
            repo_logger.setLevel(logging.NOTSET)
    (line,) = [r for r in logs.records() if r.get("operation") == "repo.tasks.add"]
    assert line["level"] == "DEBUG" and line["outcome"] == "ok" and line["duration_ms"] > 0
    assert line["user_id"] == user.id and line["request_id"] == r.headers["X-Request-ID"]


async def test_slow_queries_are_warnings_without_sql_or_values(database_url) -> None:
    running = await start_app(make_settings(database_url, db_slow_ms=0))
    user = User()
    try:
        with LogCapture() as logs:
            logs.set_level(logging.WARNING)
            async with running.client() as c:
                r = await c.post(
                    user.url("/tasks"), json={"title": "Secret plans"}, headers=user.headers
                )
                assert r.status_code == 201
                metrics = (await c.get("/metrics")).text
    finally:
        await running.stop()
    slow = [r for r in logs.records() if r["message"] == "slow query"]
    assert slow and all(r["level"] == "WARNING" for r in slow)
    assert {r["statement"] for r in slow} >= {"INSERT"}
    assert all(r["operation"] == "db.query" and r["duration_ms"] > 0 for r in slow)
    assert "Secret plans" not in logs.text and "INTO tasks" not in logs.text
    assert re.search(r"^todochat_db_slow_queries_total [1-9]", metrics, re.M)


async def test_metrics_count_requests_turns_tools_model_and_pool(database_url) -> None:
    first = await start_app(make_settings(database_url))
    second = await start_app(make_settings(database_url))
    user = User()
    try:
        async with first.client() as c:
            r = await c.post(
                user.url("/chat"), json={"message": "add feed the cat"}, headers=user.headers
            )
            assert r.status_code == 200
            assert (await c.get(user.url("/tasks/999999"), headers=user.headers)).status_code == 404
            r = await c.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
        requests = "todochat_http_requests_total"
        chat, task = "/api/{user_id}/chat", "/api/{user_id}/tasks/{task_id}"
        for line in (
            f'{requests}{{method="POST",route="{chat}",status="200"}} 1.0',
            f'{requests}{{method="GET",route="{task}",status="404"}} 1.0',
            'todochat_chat_turns_total{outcome="ok"} 1.0',
            'todochat_tool_calls_total{outcome="ok",tool="add_task"} 1.0',
            "todochat_model_call_duration_seconds_count 2.0",
        ):
            assert line in text, line
        assert (
            'todochat_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/api/{user_id}/chat"}'
            in text
        )
        assert re.search(r"^todochat_db_pool_size \d", text, re.M)
        assert re.search(r"^todochat_db_pool_checked_out 0\.0", text, re.M)
        assert user.id not in text  # labels are route templates, never ids

        # Each app instance has its own registry.
        async with second.client() as c2:
            other = (await c2.get("/metrics")).text
        assert 'todochat_chat_turns_total{outcome="ok"}' not in other
    finally:
        await first.stop()
        await second.stop()


async def test_metrics_can_be_switched_off(database_url) -> None:
    running = await start_app(make_settings(database_url, metrics_enabled=False))
    try:
        async with running.client() as c:
            r = await c.get("/metrics")
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    finally:
        await running.stop()


async def test_bodies_over_the_limit_are_413_before_parsing(client, user) -> None:
    big = b'{"title": "' + b"x" * 1_100_000 + b'"}'
    r = await client.post(
        user.url("/tasks"),
        content=big,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large (max 1048576 bytes)"}

    async def chunks():
        for _ in range(20):
            yield b"x" * 100_000

    r = await client.post(
        user.url("/chat"),
        content=chunks(),  # no Content-Length: counted while streaming
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert (await client.get(user.url("/tasks"), headers=user.headers)).json() == []


async def test_start_up_freezes_long_lived_objects_and_turns_still_work(database_url) -> None:
    """The service's default: what start-up built is frozen, so full collections under load
    do not walk it, and young objects are collected less often."""
    import gc

    from todochat.main import GC_GEN0_THRESHOLD

    threshold = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    running = await start_app(make_settings(database_url, gc_freeze=True))
    try:
        assert gc.get_freeze_count() > 100_000
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        user = User()
        async with running.client() as c:
            r = await c.post(
                user.url("/chat"), json={"message": "add a task to buy milk"}, headers=user.headers
            )
            assert r.status_code == 200
            r = await c.get(user.url("/tasks"), headers=user.headers)
            assert [t["title"] for t in r.json()] == ["Buy milk"]
    finally:
        await running.stop()
        gc.unfreeze()
        gc.set_threshold(*threshold)


@contextmanager
def _app_log_lines() -> Iterator[io.StringIO]:
    """The app's own logging (`configure_logging` at INFO) into a string for the block; the
    root logger's handlers and level are put back after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("INFO", stream=stream)
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_an_exception_a_library_logs_appears_as_its_type_alone() -> None:
    """SQLAlchemy's pool logs a failed close with its traceback (`exc_info=True`): the app's
    formatter keeps the exception's type and drops the stack trace and the message."""
    with _app_log_lines() as stream:
        pool_log = logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool")
        try:
            raise ValueError("SELECT secret FROM users WHERE email = 'ada@example.com'")
        except ValueError:
            pool_log.error("Exception closing connection %r", "<c>", exc_info=True, stack_info=True)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    line = next(entry for entry in lines if entry["message"].startswith("Exception closing"))
    assert line["exc_info"] == "builtins.ValueError"
    text = stream.getvalue()
    for leak in ("Traceback", 'File "', "SELECT", "ada@example.com", "Stack (most recent"):
        assert leak not in text


def test_sensitive_fields_are_masked_on_every_line_not_only_the_first() -> None:
    """The filter's verdict on a field's name is remembered (logs.py): the second line with the
    same names is masked as the first, and the fields that only look alike are kept."""
    with _app_log_lines() as stream:
        log = logging.getLogger("todochat.test")
        for n in range(2):
            log.info(
                "upstream call",
                extra={
                    "api_key": f"sk-live-{n}",
                    "Authorization": f"Bearer abc{n}",
                    "refresh_token": f"rt-{n}",
                    "tokens_used": 12,  # a number is never a secret
                    "route": "/api/{user_id}/chat",
                },
            )
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines = [line for line in lines if line["message"] == "upstream call"]
    assert len(lines) == 2
    for line in lines:
        assert line["api_key"] == line["Authorization"] == line["refresh_token"] == "[redacted]"
        assert line["tokens_used"] == 12 and line["route"] == "/api/{user_id}/chat"
        assert line["logger"] == "todochat.test" and line["level"] == "INFO"
    assert "sk-live" not in stream.getvalue() and "rt-" not in stream.getvalue()
