"""The engine: the pool, asyncpg's connection arguments, the cheap liveness check on checkout,
and the slow-query log."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from todochat.config import Settings
from todochat.metrics import Metrics

log = logging.getLogger("todochat.db")


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
