"""db.py's unit of work: once a unit has committed, its session closes in place (no task): the
commit gave the connection back, so the close has nothing left to send, whether the connection
went back into the pool or, beyond the pool's size, was closed by the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from todochat.db import Database, create_engine


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
