"""Schema migrations: the one Alembic history, applied by `todochat serve`, `todochat migrate`,
`todochat mcp` and the tests."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from todochat.config import Settings, get_settings
from todochat.db.failures import is_db_failure, is_transient, sqlstate

log = logging.getLogger("todochat.migrate")

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str | None = None, settings: Settings | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        cfg.attributes["database_url"] = database_url
    if settings is not None:
        cfg.attributes["settings"] = settings
    return cfg


def migrate(database_url: str | None = None, *, settings: Settings | None = None) -> None:
    if settings is None:
        settings = get_settings() if database_url is None else Settings(database_url=database_url)
    path = settings.sqlite_path()
    if path is not None:  # a fresh checkout has no data/ directory yet
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url, settings), "head")


def migrate_at_start(settings: Settings) -> bool:
    """The migrations `todochat serve` and `todochat migrate` apply before anything else.

    A database that refuses connections for a while (still starting beside the service, out of
    connection slots) is waited for, up to DB_STARTUP_WAIT_S. A database that cannot be used is
    one log line and False, for exit status 1: never a traceback, which would carry SQL and
    library internals into the log."""
    retrying = Retrying(
        stop=stop_after_delay(settings.db_startup_wait_s),
        wait=wait_exponential(multiplier=0.25, max=2),
        retry=retry_if_exception(is_transient),
        before_sleep=_log_wait,
        reraise=True,
    )
    try:
        retrying(migrate, settings=settings)
    except Exception as exc:
        # Any database error here (a migration's own SQL included) is told in one line.
        if not (isinstance(exc, DBAPIError | OSError) or is_db_failure(exc)):
            raise
        _log_failure(exc)
        return False
    return True


def _log_failure(exc: BaseException) -> None:
    log.error(
        "cannot migrate the database",
        extra={"operation": "migrate", "error_type": type(exc).__name__, "sqlstate": sqlstate(exc)},
    )


def _log_wait(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "database not reachable yet, waiting",
        extra={
            "operation": "migrate",
            "attempt": state.attempt_number,
            "error_type": type(exc).__name__,
            "sqlstate": sqlstate(exc) if exc is not None else None,
        },
    )
