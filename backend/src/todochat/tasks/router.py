from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from todochat.auth.dependencies import CurrentUser
from todochat.db import DatabaseDep
from todochat.errors import error_responses
from todochat.idempotency.dependencies import IdempotencyKeyDep
from todochat.ratelimit import TaskWriteRateLimit
from todochat.tasks import service
from todochat.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate

TaskId = Annotated[int, Path(gt=0, le=2**31 - 1, description="The task's id.")]

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"])
_AUTH = (401, 403, 422, 503)


@router.get("", responses=error_responses(*_AUTH))
async def list_tasks(
    user: CurrentUser,
    db: DatabaseDep,
    status: Annotated[TaskStatus, Query(description="Filter by completion.")] = TaskStatus.all,
) -> list[TaskRead]:
    """List the user's tasks, newest first."""
    return await service.list_tasks(db=db, user_id=user.id, status=status)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*_AUTH, 409, 413, 429),
    dependencies=[TaskWriteRateLimit],
)
async def create_task(
    user: CurrentUser, body: TaskCreate, db: DatabaseDep, idempotency_key: IdempotencyKeyDep
) -> TaskRead:
    """Create a task. Send an `Idempotency-Key` to make retries safe."""
    return await service.create_task(
        db=db, user_id=user.id, data=body, idempotency_key=idempotency_key
    )


@router.get("/{task_id}", responses=error_responses(*_AUTH, 404))
async def get_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> TaskRead:
    """Get one task."""
    return await service.get_task(db=db, user_id=user.id, task_id=task_id)


@router.put(
    "/{task_id}",
    responses=error_responses(*_AUTH, 404, 413, 429),
    dependencies=[TaskWriteRateLimit],
)
async def update_task(
    user: CurrentUser, task_id: TaskId, body: TaskUpdate, db: DatabaseDep
) -> TaskRead:
    """Update a task's title, description or completion."""
    return await service.update_task(db=db, user_id=user.id, task_id=task_id, data=body)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(*_AUTH, 404, 429),
    dependencies=[TaskWriteRateLimit],
)
async def delete_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> None:
    """Delete a task."""
    await service.delete_task(db=db, user_id=user.id, task_id=task_id)


@router.patch(
    "/{task_id}/complete",
    responses=error_responses(*_AUTH, 404, 429),
    dependencies=[TaskWriteRateLimit],
)
async def toggle_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> TaskRead:
    """Toggle a task between pending and completed."""
    return await service.set_completed(db=db, user_id=user.id, task_id=task_id)
