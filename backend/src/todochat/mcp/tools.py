"""The five task tools, registered on a server by `add_task_tools`; the same definitions serve
every transport.

Each tool is a thin adapter over `tasks.service`: its own short unit of work, owner-scoped.
Every write spends one unit of its user's task-write budget (RATE_LIMIT_TASK_WRITES, the REST
routes' budget), whoever calls: the chat agent or an outside client. Outside clients also spend
RATE_LIMIT_MCP on every call. A refused call does nothing and says so as a tool error.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from todochat.config import Settings
from todochat.db import Database
from todochat.errors import DatabaseUnavailable
from todochat.idempotency import service as idempotency
from todochat.idempotency.service import IdempotencyKey
from todochat.mcp.identity import EFFECT_META_KEY, Identity, meta_value, user_of
from todochat.mcp.schemas import (
    ListedTask,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskList,
    TaskUpdated,
)
from todochat.ratelimit import RateLimiter
from todochat.schemas import describe, problems
from todochat.tasks import service as task_service
from todochat.tasks.schemas import (
    PAGE_DEFAULT,
    Description,
    TaskCreate,
    TaskRead,
    TaskStatus,
    TaskUpdate,
    Title,
)
from todochat.tasks.service import TaskNotFound

T = TypeVar("T")


class LimitReached(ToolError):
    """A call refused by a rate limit: nothing was done."""


def in_our_words(exc: ValidationError) -> str:
    """What the REST API would say ("title: String should have at most 200 characters"), never
    pydantic's own text, which names internal models and links its versioned documentation."""
    return "; ".join(describe(p) for p in problems(exc.errors()))


# Strict: "3", 3.0 and true are not task ids, as in the REST API's bodies.
TaskIdArg = Annotated[
    int, Field(strict=True, ge=1, le=2**31 - 1, description="The task's numeric id.")
]


def _effect_key(ctx: Context, *, ttl_s: float) -> IdempotencyKey | None:
    key = meta_value(ctx, EFFECT_META_KEY)
    # One transaction per call (`run_once`): no lease and no waiting, only the key's lifetime.
    return IdempotencyKey(key=key, scope="tool add_task", ttl_s=ttl_s) if key else None


def add_task_tools(
    server: MCPServer,
    *,
    database: Database,
    identity: Identity,
    limiter: RateLimiter,
    count_calls: bool,
    settings: Settings,
) -> None:
    """Register the five tools on `server`. `count_calls`: see `create_mcp_server`."""

    def tool(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a tool; its docstring, dedented, is the description the model reads."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            return server.tool(description=inspect.cleandoc(fn.__doc__ or ""), **options)(fn)

        return register

    async def admit_call(user_id: str) -> None:
        if not count_calls:
            return
        verdict = await limiter.hit(scope="mcp", key=user_id)
        if not verdict.allowed:
            raise LimitReached(
                "Not done: too many tool calls in a short time. "
                f"Try again in {verdict.reset_in_s} seconds."
            )

    async def admit_write(user_id: str) -> None:
        verdict = await limiter.hit(scope="task_write", key=user_id)
        if not verdict.allowed:
            raise LimitReached(
                "Not done: too many changes to the task list in a short time. "
                f"Try again in {verdict.reset_in_s} seconds."
            )

    async def guarded(call: Awaitable[T]) -> T:
        """A failure the caller can act on becomes a tool error (`isError`) in our words."""
        try:
            return await call
        except TaskNotFound as exc:
            raise ToolError(exc.detail) from exc
        except ValidationError as exc:
            raise ToolError(in_our_words(exc)) from exc
        except DatabaseUnavailable as exc:
            raise ToolError(exc.detail) from exc

    @tool()
    async def add_task(
        ctx: Context,
        title: Annotated[Title, Field(description="Short title, 1-200 characters.")],
        description: Annotated[
            Description | None, Field(description="Optional details, up to 1000 characters.")
        ] = None,
    ) -> TaskCreated:
        """Create a new task on the user's todo list.

        Use when the user asks to add, create or remember something.

        Args:
            title: What to do, as a short imperative phrase ("Buy groceries").
            description: Optional longer details.

        Returns:
            {"task_id": int, "status": "created", "title": str}
        """
        user_id = user_of(ctx, identity)
        await admit_call(user_id)

        async def run() -> TaskCreated:
            data = TaskCreate(title=title, description=description)
            await admit_write(user_id)
            task = await idempotency.run_once(
                database,
                user_id=user_id,
                key=_effect_key(ctx, ttl_s=settings.idempotency_ttl_s),
                body=data,
                act=partial(task_service.create_task, user_id=user_id, data=data),
                result_type=TaskRead,
                status_code=201,
            )
            return TaskCreated(task_id=task.id, status="created", title=task.title)

        return await guarded(run())

    @tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def list_tasks(
        ctx: Context,
        status: Annotated[
            Literal["all", "pending", "completed"],
            Field(description="Which tasks: all, pending (not done) or completed."),
        ] = "all",
    ) -> Annotated[CallToolResult, TaskList]:
        """List the user's tasks, newest first.

        Use to show tasks, and before acting on a task the user names by its title.

        Args:
            status: "all" (default), "pending" or "completed".

        Returns:
            {"result": [{"id": int, "title": str, "description": str | null,
            "completed": bool}, ...]}, the newest ones only when the list is long: then the
            answer also has "more": true and a "note" saying how many are shown. To act on an
            older task, ask the user for its number.
        """
        user_id = user_of(ctx, identity)
        await admit_call(user_id)
        page = await guarded(
            database.run(
                task_service.list_tasks,
                user_id=user_id,
                status=TaskStatus(status),
                limit=PAGE_DEFAULT,
            )
        )
        rows = [
            ListedTask(id=t.id, title=t.title, description=t.description, completed=t.completed)
            for t in page.tasks
        ]
        answer = TaskList(result=rows)
        if page.next_cursor is not None:
            answer["more"] = True
            answer["note"] = f"Only the newest {len(rows)} tasks are listed; the user has more."
        # The text is the bare list (also "[]" when empty) for clients that read text only,
        # unless it was cut: then the note must reach them too.
        text = json.dumps(rows if page.next_cursor is None else answer)
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=dict(answer)
        )

    @tool()
    async def complete_task(ctx: Context, task_id: TaskIdArg) -> TaskCompleted:
        """Mark one task as completed.

        Args:
            task_id: The id of the task, as shown by list_tasks.

        Returns:
            {"task_id": int, "status": "completed", "title": str}. When the user has no such
            task, the call fails with "Task <id> not found".
        """
        user_id = user_of(ctx, identity)
        await admit_call(user_id)

        async def run() -> TaskCompleted:
            await admit_write(user_id)
            task = await database.run(
                task_service.set_completed, user_id=user_id, task_id=task_id, completed=True
            )
            return TaskCompleted(task_id=task.id, status="completed", title=task.title)

        return await guarded(run())

    @tool(annotations=ToolAnnotations(destructiveHint=True))
    async def delete_task(ctx: Context, task_id: TaskIdArg) -> TaskDeleted:
        """Delete one task permanently.

        Args:
            task_id: The id of the task, as shown by list_tasks.

        Returns:
            {"task_id": int, "status": "deleted", "title": str}. When the user has no such
            task, the call fails with "Task <id> not found".
        """
        user_id = user_of(ctx, identity)
        await admit_call(user_id)

        async def run() -> TaskDeleted:
            await admit_write(user_id)
            task = await database.run(task_service.delete_task, user_id=user_id, task_id=task_id)
            return TaskDeleted(task_id=task.id, status="deleted", title=task.title)

        return await guarded(run())

    @tool()
    async def update_task(
        ctx: Context,
        task_id: TaskIdArg,
        title: Annotated[
            Title | None, Field(description="New title, 1-200 characters, if changing it.")
        ] = None,
        description: Annotated[
            Description | None,
            Field(description="New description, up to 1000 characters, if changing it."),
        ] = None,
    ) -> TaskUpdated:
        """Change a task's title and/or description.

        Args:
            task_id: The id of the task, as shown by list_tasks.
            title: The new title; omit to keep the current one.
            description: The new description; omit to keep it, "" to clear it.

        Returns:
            {"task_id": int, "status": "updated", "title": str}. When the user has no such
            task, the call fails with "Task <id> not found".
        """
        user_id = user_of(ctx, identity)
        await admit_call(user_id)
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = title
        if description is not None:
            changes["description"] = description
        if not changes:
            raise ToolError("Nothing to change: give a new title or description")

        async def run() -> TaskUpdated:
            data = TaskUpdate(**changes)
            await admit_write(user_id)
            task = await database.run(
                task_service.update_task, user_id=user_id, task_id=task_id, data=data
            )
            return TaskUpdated(task_id=task.id, status="updated", title=task.title)

        return await guarded(run())
