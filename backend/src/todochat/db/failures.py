"""Which database errors are worth retrying, and which mean the database is unwell (503)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

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
SAFE_AT_COMMIT_SQLSTATES = {"40001", "40P01"}
# SQLSTATE classes that mean the database cannot be used now, whatever the statement: a
# connection exception (08), a refused login (28: a role disabled or a password rotated), a
# database that does not exist (3D), insufficient resources (53), operator intervention (57).
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57")


class CommitOutcomeUnknown(Exception):
    """The connection failed during COMMIT: the write may or may not be durable."""


def sqlstate(exc: BaseException) -> str | None:
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
    if isinstance(exc, asyncpg.PostgresError) and sqlstate(exc) in _RETRYABLE_SQLSTATES:
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        if sqlstate(exc) in _RETRYABLE_SQLSTATES:
            return True
        if isinstance(exc, OperationalError | InterfaceError):
            text = str(exc.orig).lower() if exc.orig else ""
            # SQLite's writer lock, and asyncpg's wording for a dropped connection.
            return any(
                s in text
                for s in ("database is locked", "connection", "closed", "terminat", "shutdown")
            )
    return isinstance(exc, OSError)


def is_db_failure(exc: BaseException) -> bool:
    """The database is unreachable or unwell (503), as opposed to a statement that is wrong for
    this data, such as a unique violation, which the caller handles."""
    if isinstance(
        exc,
        OperationalError
        | InterfaceError
        | PoolTimeoutError
        | CommitOutcomeUnknown
        | ConnectionError
        | OSError,
    ) or is_transient(exc):
        return True
    code = sqlstate(exc)
    return code is not None and code[:2] in _UNAVAILABLE_CLASSES
