"""Engine, pool and the unit of work.

Every transaction goes through `Database.run`: it opens a short session, commits once, and
retries the whole unit on transient database errors. A failure while committing is never
blindly retried, because the write may already be durable: a caller that can tell (it wrote an
idempotency record in the same transaction) passes `resolve`, which looks in a fresh
transaction; otherwise the caller gets a 503 and, with an Idempotency-Key, can safely retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import asyncpg
import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from todochat.config import Settings
from todochat.errors import DatabaseUnavailable
from todochat.metrics import Metrics

log = logging.getLogger("todochat.db")
T = TypeVar("T")
P = ParamSpec("P")

# SQLSTATEs after which the transaction is known not to have committed, so re-running is safe:
# serialization failures, the server shutting down, lost connections, and a connection refused
# for lack of slots or resources ("too many clients", 53300), which PgBouncer-less deployments
# hit under bursts.
_RETRYABLE_SQLSTATES = {
    "40001",
    "40P01",
    "57P01",
    "57P02",
    "57P03",
    "08000",
    "08001",
    "08003",
    "08004",
    "08006",
    "53000",
    "53300",
}
_SAFE_AT_COMMIT_SQLSTATES = {"40001", "40P01"}


class CommitOutcomeUnknown(Exception):
    """The connection failed during COMMIT: the write may or may not be durable."""


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: the database blinked, the transaction did not commit."""
    if isinstance(exc, CommitOutcomeUnknown | PoolTimeoutError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # asyncpg raises its own errors, unwrapped, while the pool sets up a fresh connection that
    # the server has just terminated ("connection is closed").
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc).lower():
        return True
    if isinstance(exc, asyncpg.PostgresError) and _sqlstate(exc) in _RETRYABLE_SQLSTATES:
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
            return True
        if isinstance(exc, OperationalError | InterfaceError):
            text = str(exc.orig).lower() if exc.orig else ""
            # SQLite's writer lock, and asyncpg's wording for a dropped connection.
            return any(
                s in text
                for s in ("database is locked", "connection", "closed", "terminat", "shutdown")
            )
    return isinstance(exc, OSError)


def _is_db_failure(exc: BaseException) -> bool:
    """The database is unreachable or unwell (503), as opposed to a statement that is wrong for
    this data, such as a unique violation, which the caller handles."""
    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | PoolTimeoutError
        | CommitOutcomeUnknown
        | ConnectionError
        | OSError,
    ) or is_transient(exc)


def create_engine(settings: Settings, *, metrics: Metrics | None = None) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_pre_ping=settings.db_pool_pre_ping,
            hide_parameters=True,
            connect_args={"timeout": 15},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; busy_timeout waits for the lock.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

    else:
        own_check = settings.db_pool_pre_ping and make_url(url).get_driver_name() == "asyncpg"
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_recycle=settings.db_pool_recycle_s,
            # On asyncpg, pre-ping is `_install_liveness_check`, without SQLAlchemy's three
            # round trips on every checkout (P2).
            pool_pre_ping=settings.db_pool_pre_ping and not own_check,
            # Parameters are user data (task titles, messages): keep them out of error text.
            hide_parameters=True,
            connect_args=postgres_connect_args(settings),
        )
        if own_check:
            _install_liveness_check(engine)
    _install_slow_query_log(engine, settings.db_slow_ms, metrics)
    return engine


def postgres_connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's connection arguments: the engine's and the migrations'.

    Without prepared statements (`DB_PREPARED_STATEMENTS=false`, for PgBouncer in transaction
    mode): neither asyncpg nor SQLAlchemy caches a statement, and SQLAlchemy's statements are
    prepared unnamed. asyncpg then sends each one's Parse in the same message as its Bind and
    Execute, so it never depends on the server connection of an earlier round trip, and no
    statement is left behind on the server (S1 in specs/decisions.md).
    """
    args: dict[str, Any] = {"timeout": settings.db_connect_timeout_s}
    if not settings.db_prepared_statements:
        args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=_unnamed_statement,
        )
    return args


def _unnamed_statement() -> str:
    return ""


# A pooled connection idle for longer than this is pinged before use: idle connections are the
# ones that proxies, NAT tables and server timeouts drop without telling the client.
PING_IF_IDLE_S = 10.0
# A ping that gets no answer in this long means the connection is gone (a dropped connection
# would otherwise wait for TCP to give up, minutes later).
PING_TIMEOUT_S = 2.0


def _install_liveness_check(engine: AsyncEngine) -> None:
    """Pre-ping at the cost of one check per checkout instead of three round trips (asyncpg).

    A connection the server closed (idle timeout, restart, `pg_terminate_backend`) is known to
    asyncpg as soon as the event loop reads the EOF, so `is_closed()` catches it for free and
    only that connection is replaced. A connection that sat idle could have been dropped
    silently on the way; it gets a real ping (an empty statement, `PING_TIMEOUT_S` to answer),
    and if that fails the pool replaces every connection older than now, as SQLAlchemy's own
    pre-ping does. A connection in use every few seconds has proven itself. A unit of work that
    still meets a dead connection is retried by `Database.run`.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = dbapi_conn.driver_connection
        if driver.is_closed():
            raise sa_exc.DisconnectionError("connection closed by the server")
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_IF_IDLE_S:
            try:
                # Behind a transaction pooler (DB_PREPARED_STATEMENTS=false) asyncpg re-parses
                # the unnamed statement in the message that runs it: safe outside a transaction.
                await_(driver.fetchrow(";", timeout=PING_TIMEOUT_S))
            except Exception as error:
                raise sa_exc.InvalidatePoolError("ping failed") from error


def _install_slow_query_log(engine: AsyncEngine, slow_ms: float, metrics: Metrics | None) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, _cursor: Any, _stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info.setdefault("query_start", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _end(conn: Any, _cursor: Any, stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        started = conn.info["query_start"].pop()
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms >= slow_ms:
            if metrics is not None:
                metrics.db_slow_queries.inc()
            # Only the statement's verb: SQL text and parameters never reach the logs.
            log.warning(
                "slow query",
                extra={
                    "operation": "db.query",
                    "duration_ms": round(elapsed_ms, 2),
                    "statement": stmt.split(None, 1)[0].upper() if stmt else "",
                },
            )


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
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_exponential_jitter(multiplier=0.1, max=0.4, jitter=0.05),
            retry=retry_if_exception(is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._run_once(work)
        except Exception as exc:
            if _is_db_failure(exc):
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
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "unit of work",
                    extra={
                        "operation": "db.unit_of_work",
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "attempts": attempts,
                    },
                )
        raise AssertionError("unreachable")  # pragma: no cover

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
                if _sqlstate(exc) in _SAFE_AT_COMMIT_SQLSTATES:
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
