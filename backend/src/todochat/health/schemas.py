from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class DatabaseHealth(BaseModel):
    status: Literal["ok", "down"]
    latency_ms: float | None


class PoolHealth(BaseModel):
    size: int
    checked_in: int
    checked_out: int
    overflow: int


class ModelHealth(BaseModel):
    provider: str
    name: str
    # The model upstream's last known state: the start-up check (`GET /models`), then the
    # outcome of the latest model call. Never a call per health check, and never a reason
    # for readiness to fail (agent/upstream.py).
    status: Literal["ok", "unknown", "unreachable", "model_missing", "failing", "misconfigured"]
    detail: str | None = None
    checked_at: datetime | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: DatabaseHealth
    pool: PoolHealth
    model: ModelHealth


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"
