"""The bench's stack of processes: one that fails to start leaves nothing behind (PostgreSQL
only, as the bench is)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from bench.harness import ADMIN_URL, BenchDatabase, FakeUpstreamProcess
from bench.scenarios import Stack


async def test_a_stack_whose_server_does_not_start_leaves_nothing_running() -> None:
    fake = FakeUpstreamProcess(delay_s=0.0)
    # A setting the server refuses: it exits at start, after the database and the fake are up.
    stack = Stack(env={"DB_POOL_SIZE": "0"}, fake=fake)
    name = f"todochat_bench_test_{uuid.uuid4().hex[:8]}"
    stack.db = BenchDatabase(name=name)
    with pytest.raises(RuntimeError, match="server exited at start"):
        async with stack:
            pytest.fail("the server started")
    assert stack.server is not None and stack.server.proc is not None
    assert stack.server.proc.poll() is not None
    assert fake.proc is not None and fake.proc.poll() is not None
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        assert await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None
    finally:
        await conn.close()
