from __future__ import annotations

import asyncio
import logging
import time

from todochat import __version__
from todochat.agent.upstream import UpstreamState
from todochat.config import Settings
from todochat.db import Database
from todochat.health.schemas import DatabaseHealth, Health, ModelHealth, PoolHealth

log = logging.getLogger("todochat.health")
# Readiness must answer within 2 s even when the database hangs, not after the pool timeout;
# 1 s leaves room for a loaded event loop.
DB_CHECK_TIMEOUT_S = 1.0


async def readiness(*, db: Database, settings: Settings, upstream: UpstreamState) -> Health:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            await db.ping()
        database = DatabaseHealth(
            status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 2)
        )
    except Exception as exc:  # any failure of the round trip means "not ready"
        log.warning("health check: database down", extra={"error_type": type(exc).__name__})
        database = DatabaseHealth(status="down", latency_ms=None)
    return Health(
        status="ok" if database.status == "ok" else "degraded",
        version=__version__,
        database=database,
        pool=PoolHealth(**db.pool_status()),
        model=ModelHealth(
            provider=settings.resolved_model_provider,
            name=settings.model_name,
            status=upstream.status,
            detail=upstream.detail,
            checked_at=upstream.checked_at,
        ),
    )
