"""The Agents SDK's `gather_with_cancel` without a task for what finishes at once (P14).

At every step the Runner gathers a handful of awaitables (hooks, the system prompt, the prompt
config, tool lists) through `agents.util._asyncio_tasks.gather_with_cancel`, which makes a task
of each. For our turns nearly all of them finish without waiting, so each task costs a loop pass
and a wake-up behind every other ready callback: under load that was the largest stage of a
turn (docs/PERFORMANCE.md, "timeline"). `eager_gather` does what Python 3.12's eager task
factory would: each coroutine runs its first step at once, in a copy of the context as a task
would, and only one that has to wait becomes a task. Same results, same concurrency, the same
cancellation of siblings when one fails.

This replaces a name in private SDK modules, so `pyproject.toml` pins `openai-agents` to its
minor release and tests/agent/test_eager_gather.py fails if the SDK stops using it.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

# The SDK modules that import `gather_with_cancel` by name (openai-agents 0.24).
SDK_MODULES = (
    "agents.agent",
    "agents.run_internal.run_loop",
    "agents.run_internal.turn_resolution",
    "agents.run_internal.turn_preparation",
    "agents.run_internal.tool_planning",
    "agents.run_internal.tool_execution",
    "agents.run_internal.tool_actions",
)


class _Resumed(collections.abc.Coroutine):  # type: ignore[type-arg]
    """A coroutine whose first step has run already: hands its first yield to the task that
    takes it over, then forwards everything to the coroutine."""

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first: Any = first
        self.started = False

    def send(self, value: Any) -> Any:
        if not self.started:
            self.started = True
            return self.first
        return self.coro.send(value)

    def throw(self, *args: Any) -> Any:
        self.started = True
        return self.coro.throw(*args)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Any:
        return self

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.send(None)


async def eager_gather(
    *awaitables: Awaitable[Any],
    on_child_failure: Callable[[BaseException], None] | None = None,
) -> tuple[Any, ...]:
    """`gather_with_cancel`'s contract: the results in order; when one raises, the others are
    cancelled and drained, `on_child_failure` sees the error, and it is raised."""
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Any]] = []
    for awaitable in awaitables:
        if not asyncio.iscoroutine(awaitable):
            futures.append(asyncio.ensure_future(awaitable))
            continue
        context = contextvars.copy_context()
        done: asyncio.Future[Any] = loop.create_future()
        try:
            first = context.run(awaitable.send, None)
        except StopIteration as stop:
            done.set_result(stop.value)
        except BaseException as error:  # the coroutine's own error, as its task would hold it
            done.set_exception(error)
        else:
            futures.append(loop.create_task(_Resumed(awaitable, first), context=context))
            continue
        futures.append(done)
    if all(future.done() for future in futures):
        # The common case: nothing had to wait, so there is nothing to gather or cancel.
        for future in futures:
            failure = future.exception()
            if failure is not None:
                if on_child_failure is not None:
                    on_child_failure(failure)
                raise failure
        return tuple(future.result() for future in futures)
    # As the SDK does: the outer wait alone is cancelled, then the children are cancelled and
    # drained here.
    gathered = asyncio.gather(*futures)
    gathered.add_done_callback(_consume_exception)
    try:
        await asyncio.wait((gathered,))
        try:
            return tuple(gathered.result())
        except BaseException as error:
            if on_child_failure is not None:
                on_child_failure(error)
            raise
    except GeneratorExit:
        raise
    except BaseException:
        for future in futures:
            if not future.done():
                future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
        raise


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def install() -> None:
    """Make the SDK's Runner gather with `eager_gather` (idempotent)."""
    for name in SDK_MODULES:
        module = importlib.import_module(name)
        if not hasattr(module, "gather_with_cancel"):
            raise RuntimeError(f"{name} no longer uses gather_with_cancel; see agent/eager_gather")
        module.gather_with_cancel = eager_gather  # type: ignore[attr-defined]
