from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response, status

from todochat.auth.dependencies import CurrentUser
from todochat.db import DatabaseDep
from todochat.errors import error_responses
from todochat.idempotency import service as idempotency
from todochat.idempotency.dependencies import IdempotencyKeyDep
from todochat.ratelimit import TaskWriteRateLimit
from todochat.tasks import service
from todochat.tasks.schemas import (
    PAGE_DEFAULT,
    PAGE_MAX,
    TaskCreate,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)
from todochat.tasks.service import CURSOR_PATTERN

TaskId = Annotated[int, Path(gt=0, le=2**31 - 1, description="The task's id.")]

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"])
_AUTH = (401, 403, 422, 503)


_PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "A page of tasks, newest first. When there are more, `X-Next-Cursor` holds the cursor "
            'of the next page and `Link` its address (rel="next"); the last page has neither.'
        ),
        "headers": {
            "X-Next-Cursor": {
                "description": "Pass as `cursor` to get the next page.",
                "schema": {"type": "string"},
            },
            "Link": {
                "description": 'The next page, as `<...>; rel="next"` (RFC 8288).',
                "schema": {"type": "string"},
            },
        },
    }
}


@router.get("", responses={**_PAGED, **error_responses(*_AUTH)})
async def list_tasks(
    user: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
    status: Annotated[TaskStatus, Query(description="Filter by completion.")] = TaskStatus.all,
    limit: Annotated[
        int, Query(ge=1, le=PAGE_MAX, description="At most this many tasks (the page size).")
    ] = PAGE_DEFAULT,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="Where the page starts: the `X-Next-Cursor` of the previous page.",
        ),
    ] = None,
) -> list[TaskRead]:
    """List the user's tasks, newest first, a page at a time."""
    page = await db.run(
        service.list_tasks, user_id=user.id, status=status, limit=limit, cursor=cursor
    )
    if page.next_cursor is not None:
        query = urlencode({"status": status.value, "limit": limit, "cursor": page.next_cursor})
        # A relative reference: nothing in the answer is built from the request's Host.
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
        response.headers["X-Next-Cursor"] = page.next_cursor
    return page.tasks


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
    return await idempotency.run_once(
        db,
        user_id=user.id,
        key=idempotency_key,
        body=body,
        act=partial(service.create_task, user_id=user.id, data=body),
        result_type=TaskRead,
        status_code=status.HTTP_201_CREATED,
    )


@router.get("/{task_id}", responses=error_responses(*_AUTH, 404))
async def get_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> TaskRead:
    """Get one task."""
    return await db.run(service.get_task, user_id=user.id, task_id=task_id)


@router.put(
    "/{task_id}",
    responses=error_responses(*_AUTH, 404, 413, 429),
    dependencies=[TaskWriteRateLimit],
)
async def update_task(
    user: CurrentUser, task_id: TaskId, body: TaskUpdate, db: DatabaseDep
) -> TaskRead:
    """Update a task's title, description or completion."""
    return await db.run(service.update_task, user_id=user.id, task_id=task_id, data=body)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(*_AUTH, 404, 429),
    dependencies=[TaskWriteRateLimit],
)
async def delete_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> None:
    """Delete a task."""
    await db.run(service.delete_task, user_id=user.id, task_id=task_id)


@router.patch(
    "/{task_id}/complete",
    responses=error_responses(*_AUTH, 404, 429),
    dependencies=[TaskWriteRateLimit],
)
async def toggle_task(user: CurrentUser, task_id: TaskId, db: DatabaseDep) -> TaskRead:
    """Toggle a task between pending and completed."""
    return await db.run(service.set_completed, user_id=user.id, task_id=task_id)
