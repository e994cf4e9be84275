from __future__ import annotations

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


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: DatabaseHealth
    pool: PoolHealth
    model: ModelHealth


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"
