"""Rate limits for real: two app instances sharing the real Redis on 127.0.0.1:6379 (a key
prefix of their own per test), and a private redis-server that is killed mid-way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import RedisStorage

from tests.conftest import RunningApp, User, make_settings, start_app
from tests.faults import LogCapture, RedisServer

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"todochat-test-{uuid.uuid4().hex[:12]}"
    yield name
    storage = RedisStorage(
        "async+" + SHARED_REDIS, implementation="coredis", key_prefix=name, wrap_exceptions=True
    )
    await storage.reset()  # only this test's keys: reset deletes by prefix


async def _two_instances(database_url: str, **overrides: object) -> tuple[RunningApp, RunningApp]:
    a = await start_app(make_settings(database_url, **overrides))
    b = await start_app(make_settings(database_url, **overrides))
    return a, b


def _assert_limited(r, limit: int) -> None:
    assert r.status_code == 429
    assert r.json() == {"detail": "Too many requests. Please slow down and try again shortly."}
    assert 0 < int(r.headers["Retry-After"]) <= 61
    assert r.headers["X-RateLimit-Limit"] == str(limit)
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset"]) > 0


async def test_two_instances_share_one_budget_in_redis(database_url, prefix) -> None:
    a, b = await _two_instances(
        database_url,
        redis_url=SHARED_REDIS,
        rate_limit_key_prefix=prefix,
        rate_limit_task_writes="3/minute",
        rate_limit_chat="2/minute",
    )
    user = User()
    try:
        async with a.client() as ca, b.client() as cb:
            answers = []
            for client in (ca, cb, ca):
                r = await client.post(
                    user.url("/tasks"), json={"title": "Write"}, headers=user.headers
                )
                answers.append(r)
            assert [r.status_code for r in answers] == [201, 201, 201]
            assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
            refused = await cb.post(user.url("/tasks"), json={"title": "4th"}, headers=user.headers)
            _assert_limited(refused, 3)
            # Refused writes change nothing; reads are not limited.
            r = await ca.get(user.url("/tasks"), headers=user.headers)
            assert r.status_code == 200 and len(r.json()) == 3

            body = {"message": "show my tasks"}
            assert (
                await ca.post(user.url("/chat"), json=body, headers=user.headers)
            ).status_code == 200
            assert (
                await cb.post(user.url("/chat"), json=body, headers=user.headers)
            ).status_code == 200
            _assert_limited(await ca.post(user.url("/chat"), json=body, headers=user.headers), 2)

            # Another user has a budget of their own.
            other = User()
            r = await cb.post(other.url("/tasks"), json={"title": "Mine"}, headers=other.headers)
            assert r.status_code == 201
            metrics = (await ca.get("/metrics")).text
            assert 'todochat_rate_limited_total{scope="chat"} 1.0' in metrics
    finally:
        await a.stop()
        await b.stop()


async def test_sign_in_is_limited_per_client_address(database_url, prefix) -> None:
    a, b = await _two_instances(
        database_url,
        redis_url=SHARED_REDIS,
        rate_limit_key_prefix=prefix,
        rate_limit_auth="2/minute",
    )
    try:
        async with a.client() as ca, b.client() as cb:
            body = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-password"}
            assert (await ca.post("/api/auth/signin", json=body)).status_code == 401
            assert (await cb.post("/api/auth/signin", json=body)).status_code == 401
            _assert_limited(await ca.post("/api/auth/signin", json=body), 2)
    finally:
        await a.stop()
        await b.stop()


async def test_redis_going_away_falls_back_to_per_instance_limits(database_url, tmp_path) -> None:
    redis = RedisServer(tmp_path).start()
    a, b = await _two_instances(
        database_url,
        redis_url=redis.url,
        rate_limit_task_writes="3/minute",
        rate_limit_redis_retry_s=0,
        log_level="WARNING",
    )
    user = User()

    async def write(client) -> int:
        r = await client.post(user.url("/tasks"), json={"title": "W"}, headers=user.headers)
        return r.status_code

    try:
        with LogCapture() as logs:
            async with a.client() as ca, b.client() as cb:
                assert [await write(ca), await write(cb)] == [201, 201]  # shared: 2 of 3 used
                redis.kill()
                # Each instance now counts on its own: a has used nothing locally yet.
                assert [await write(ca) for _ in range(3)] == [201, 201, 201]
                assert await write(ca) == 429
                assert await write(cb) == 201
                metrics = (await ca.get("/metrics")).text
                assert "todochat_rate_limit_fallback 1.0" in metrics

                redis.start()  # back, empty, on the same port: the budget is shared again
                assert [await write(cb) for _ in range(3)] == [201, 201, 201]
                assert await write(ca) == 429
                metrics = (await cb.get("/metrics")).text
                assert "todochat_rate_limit_fallback 0.0" in metrics
        assert logs.text.count("Redis is back; rate limits are shared again") == 2
        warnings = [
            r
            for r in logs.records()
            if r["message"].startswith("Redis unavailable for rate limits")
        ]
        assert len(warnings) == 2  # once per instance, not once per request
        assert all(w["level"] == "WARNING" for w in warnings)
    finally:
        redis.kill()
        await a.stop()
        await b.stop()


async def test_budget_headers_survive_an_error_answer(database_url) -> None:
    """A limited route that then fails (404 here) still reports the remaining budget."""
    from tests.conftest import User, make_settings, start_app

    running = await start_app(make_settings(database_url, rate_limit_task_writes="5/minute"))
    user = User()
    try:
        async with running.client() as c:
            r = await c.delete(user.url("/tasks/999999"), headers=user.headers)
            assert r.status_code == 404
            assert r.headers["x-ratelimit-limit"] == "5"
            assert r.headers["x-ratelimit-remaining"] == "4"
    finally:
        await running.stop()
