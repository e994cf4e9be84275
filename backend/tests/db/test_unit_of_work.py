"""db.py's unit of work: once a unit has committed, its session closes in place (no task): the
commit gave the connection back, so the close has nothing left to send, whether the connection
went back into the pool or, beyond the pool's size, was closed by the commit. A unit's first
attempt runs without tenacity, which takes over from a failed one (P22)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from todochat.db import Database, create_engine
from todochat.errors import DatabaseUnavailable
from todochat.metrics import Metrics


async def select_one(session: AsyncSession) -> int:
    return int((await session.execute(sa.text("SELECT 1"))).scalar_one())


@pytest.mark.parametrize("held_elsewhere", [0, 1], ids=["pool-has-room", "overflow"])
async def test_after_a_commit_the_close_never_waits(database_url: str, held_elsewhere: int) -> None:
    """The fact the in-place close rests on, on both engines, with the pool's one connection
    free or held by another unit (then this unit's connection is an overflow one)."""
    engine = create_engine(make_settings(database_url, db_pool_size=1, db_max_overflow=1))
    db = Database(engine)
    other = db.sessionmaker()
    try:
        if held_elsewhere:
            await select_one(other)
        for _ in range(3):
            session = db.sessionmaker()
            assert await select_one(session) == 1
            await session.commit()
            closing = session.close()
            with pytest.raises(StopIteration):
                closing.send(None)  # done at its first step: nothing awaited
        assert engine.pool.checkedout() == held_elsewhere
    finally:
        await other.close()
        await engine.dispose()


async def test_a_unit_starts_no_task_to_close_its_session(database_url: str) -> None:
    engine = create_engine(make_settings(database_url, db_pool_size=2, db_max_overflow=1))
    db = Database(engine)
    started: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        started.append(getattr(coro, "__qualname__", type(coro).__name__))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        assert await db.run(select_one) == 1
        assert await db.run(select_one) == 1
    finally:
        loop.set_task_factory(previous)
        await engine.dispose()
    assert not [name for name in started if "close" in name.lower()], started


async def test_a_failed_unit_still_closes_its_session_and_gives_the_connection_back(
    database_url: str,
) -> None:
    engine = create_engine(make_settings(database_url, db_pool_size=1, db_max_overflow=0))
    db = Database(engine)

    async def fails(session: AsyncSession) -> int:
        await select_one(session)
        raise LookupError("the service's own error")

    try:
        with pytest.raises(LookupError):
            await db.run(fails)
        assert engine.pool.checkedout() == 0
        assert await db.run(select_one) == 1
    finally:
        await engine.dispose()


class _Flaky:
    """A unit that fails with `error` on its first `failures` attempts, then selects 1."""

    def __init__(self, error: BaseException, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    async def __call__(self, session: AsyncSession) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return await select_one(session)


async def _run(database_url: str, flaky: _Flaky) -> tuple[int | Exception, float]:
    """`flaky` as a unit of work allowed three attempts: its result or what it raised, and the
    retries the metrics counted."""
    metrics = Metrics()
    engine = create_engine(make_settings(database_url))
    db = Database(engine, retry_attempts=3, metrics=metrics)
    outcome: int | Exception
    try:
        outcome = await db.run(flaky)
    except Exception as exc:
        outcome = exc
    finally:
        await engine.dispose()
    retries = metrics.registry.get_sample_value("todochat_db_retries_total")
    assert retries is not None
    return outcome, retries


async def test_a_transient_failure_of_the_first_attempt_is_retried(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _Flaky(ConnectionResetError("the database blinked"), failures=1)
    outcome, retries = await _run(database_url, flaky)
    assert outcome == 1
    assert flaky.calls == 2
    assert retries == 1
    retried = [r for r in caplog.records if r.getMessage() == "transient database error, retrying"]
    assert [getattr(r, "attempt", None) for r in retried] == [1]


async def test_transient_failures_stop_after_the_attempts_allowed(database_url: str) -> None:
    flaky = _Flaky(ConnectionResetError("the database is gone"), failures=10)
    outcome, retries = await _run(database_url, flaky)
    assert isinstance(outcome, DatabaseUnavailable)
    # The first attempt counts among the three: two retries, not three.
    assert flaky.calls == 3
    assert retries == 2


async def test_a_failure_that_is_not_transient_is_not_retried(database_url: str) -> None:
    flaky = _Flaky(LookupError("the service's own error"), failures=1)
    outcome, retries = await _run(database_url, flaky)
    assert isinstance(outcome, LookupError)
    assert flaky.calls == 1
    assert retries == 0
