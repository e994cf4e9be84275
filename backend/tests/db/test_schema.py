"""The schema made by the migrations equals the models, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from todochat.models import metadata


async def test_migrated_schema_equals_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn: object) -> list[object]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
                return list(compare_metadata(ctx, metadata))

            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


async def test_expected_indexes_exist(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:

            def indexes(sync_conn: object) -> dict[str, set[str]]:
                from sqlalchemy import inspect

                insp = inspect(sync_conn)
                return {
                    t: {i["name"] for i in insp.get_indexes(t)}  # type: ignore[misc]
                    for t in ("tasks", "messages", "conversations")
                }

            found = await conn.run_sync(indexes)
    finally:
        await engine.dispose()
    assert "ix_tasks_user_id_completed_id" in found["tasks"]
    assert "ix_messages_conversation_id_id" in found["messages"]
    assert "ix_conversations_user_id_updated_at" in found["conversations"]
