"""Alembic environment: one history for SQLite and PostgreSQL, run with the async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import todochat.models  # noqa: F401  (registers every table)
from todochat.config import Settings, get_settings
from todochat.db import postgres_connect_args
from todochat.models import metadata

config = context.config
settings: Settings = config.attributes.get("settings") or get_settings()
url = config.attributes.get("database_url") or settings.database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table, a no-op on PostgreSQL.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run() -> None:
    # The service's own connection arguments, so migrations run behind a pooler as it does.
    connect_args = {} if url.startswith("sqlite") else postgres_connect_args(settings)
    engine = create_async_engine(url, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run())
