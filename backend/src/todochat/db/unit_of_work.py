"""The unit of work: one short transaction, committed once, retried whole on transient errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from todochat.db.failures import (
    SAFE_AT_COMMIT_SQLSTATES,
    CommitOutcomeUnknown,
    is_db_failure,
    is_transient,
    sqlstate,
)
from todochat.errors import DatabaseUnavailable
from todochat.lanes import sleep_aside
from todochat.metrics import Metrics

log = logging.getLogger("todochat.db")
T = TypeVar("T")
P = ParamSpec("P")


class Database:
    """The engine and the units of work of one app instance."""

    def __init__(
        self, engine: AsyncEngine, *, retry_attempts: int = 3, metrics: Metrics | None = None
    ) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self.retry_attempts = retry_attempts
        self.metrics = metrics

    async def run(
        self,
        work: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `work(session, *args, **kwargs)` in one transaction, committed at the end and
        retried as a whole on transient errors. Services take the session; this runs them."""
        return await self._run_retrying(lambda session: work(session, *args, **kwargs))

    async def run_resolving(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        resolve: Callable[[AsyncSession], Awaitable[T | None]],
    ) -> T:
        """`run` for a write whose commit may fail without telling whether it took effect.

        When the connection fails during COMMIT the write may or may not be durable: a fresh
        transaction asks the database with `resolve`. A result means `work` did commit and is
        that result; None means it did not, and `work` runs again. (`run` answers
        DatabaseUnavailable instead.)
        """
        try:
            return await self._run_retrying(work)
        except DatabaseUnavailable as exc:
            if not isinstance(exc.__cause__, CommitOutcomeUnknown):
                raise
        log.warning("commit outcome unknown; checking whether it took effect")
        known = await self._run_retrying(resolve)
        if known is not None:
            return known
        return await self._run_retrying(work)

    async def _run_retrying(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        started = time.perf_counter()
        attempts = 0
        first_failure: Exception | None = None

        async def attempt() -> T:
            nonlocal attempts, first_failure
            if first_failure is not None:
                # The attempt made before tenacity took over, told to it as its first.
                failed, first_failure = first_failure, None
                raise failed
            attempts += 1
            return await self._run_once(work)

        retrying: AsyncRetrying | None = None
        try:
            try:
                # Nearly every unit succeeds at once: it runs without a retrying object, whose
                # making and bookkeeping cost as much as a statement (P22).
                return await attempt()
            except Exception as exc:
                first_failure = exc
            # Tenacity decides from the first failure on: whether to retry, how long to wait,
            # and when to stop, that first attempt counted.
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.retry_attempts),
                wait=wait_exponential_jitter(multiplier=0.1, max=0.4, jitter=0.05),
                retry=retry_if_exception(is_transient),
                before_sleep=self._log_retry,
                # A chat turn's pause before a retry is not the worker's work (lanes.py).
                sleep=sleep_aside,
                reraise=True,
            )
            return await retrying(attempt)
        except Exception as exc:
            if is_db_failure(exc):
                kind = "commit_unknown" if isinstance(exc, CommitOutcomeUnknown) else "unavailable"
                if self.metrics is not None:
                    self.metrics.db_errors.labels(kind).inc()
                log.error(
                    "database unavailable",
                    extra={
                        "operation": "db.unit_of_work",
                        "error_type": type(exc).__name__,
                        "attempts": attempts,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
                raise DatabaseUnavailable() from exc
            raise
        finally:
            first_failure = None
            if retrying is not None:
                # The retrying object's state refers back to it (its next actions are its own
                # bound methods): cleared, the cycle goes with the last reference instead of
                # waiting for the collector, which stops the worker to find it (P20).
                retrying.iter_state.reset()
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "unit of work",
                    extra={
                        "operation": "db.unit_of_work",
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "attempts": attempts,
                    },
                )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if self.metrics is not None:
            self.metrics.db_retries.inc()
        log.warning(
            "transient database error, retrying",
            extra={
                "operation": "db.retry",
                "attempt": state.attempt_number,
                "error_type": type(exc).__name__,
            },
        )

    async def _run_once(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        session = self.sessionmaker()
        try:
            result = await work(session)
            try:
                await session.commit()
            except DBAPIError as exc:
                if sqlstate(exc) in SAFE_AT_COMMIT_SQLSTATES:
                    raise
                raise CommitOutcomeUnknown("commit failed; outcome unknown") from exc
        except BaseException:
            # What `async with session` does: the close shielded in a task of its own, so a
            # cancellation cannot cut the rollback short.
            await session.__aexit__(None, None, None)
            raise
        # The commit gave the connection back to the pool (a session holds none between
        # transactions), so the close has nothing left to send and never waits: done in
        # place, it saves the task and the loop pass `async with` spends on it (P16).
        await session.close()
        return result

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    def pool_status(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        try:
            return {
                "size": pool.size(),
                "checked_in": pool.checkedin(),
                "checked_out": pool.checkedout(),
                # SQLAlchemy counts overflow from -pool_size; report connections beyond the pool.
                "overflow": max(0, pool.overflow()),
            }
        except AttributeError:  # a pool without counters (NullPool/StaticPool)
            return {"size": 0, "checked_in": 0, "checked_out": 0, "overflow": 0}

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


DatabaseDep = Annotated[Database, Depends(get_database)]
