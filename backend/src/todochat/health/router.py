from __future__ import annotations

from fastapi import APIRouter, Response, status

from todochat.chat.router import RuntimeDep
from todochat.config import SettingsDep
from todochat.db import DatabaseDep
from todochat.errors import NotFound, error_responses
from todochat.health import service
from todochat.health.schemas import Health, Liveness
from todochat.metrics import MetricsDep

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"model": Health, "description": "Database down"}})
async def readiness(
    db: DatabaseDep, settings: SettingsDep, runtime: RuntimeDep, response: Response
) -> Health:
    """Readiness: database round trip, pool figures, and the model upstream's last known state."""
    health = await service.readiness(db=db, settings=settings, upstream=runtime.upstream)
    if health.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health


@router.get("/health/live")
async def liveness() -> Liveness:
    """Liveness: the process answers; never touches the database."""
    return Liveness()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **error_responses(404),
    },
)
async def metrics(metrics: MetricsDep, settings: SettingsDep) -> Response:
    """Prometheus metrics of this instance: requests, chat turns, tools, model, pool."""
    if not settings.metrics_enabled:
        raise NotFound("Not Found")
    return Response(content=metrics.render(), media_type=metrics.content_type)
