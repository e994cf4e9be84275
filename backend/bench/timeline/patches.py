"""Local patches of the Agents SDK, to measure what a change there would give; never the
server's published figures. `BENCH_TIMELINE_PATCH=eager-gather` (what Python 3.12's eager task
factory would do to the SDK's `gather_with_cancel`) or `sequential-gather`."""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import importlib
from typing import Any


async def _sequential_gather(*awaitables: Any, on_child_failure: Any = None) -> tuple[Any, ...]:
    """The Agents SDK's `gather_with_cancel` without a task per awaitable: each awaited in
    turn. The same results for our turns (the awaitables it gathers for them either finish
    without waiting or are the only one of their group with work to do)."""
    results = []
    for awaitable in awaitables:
        try:
            results.append(await awaitable)
        except BaseException as error:
            if on_child_failure is not None:
                on_child_failure(error)
            for rest in awaitables[len(results) + 1 :]:
                close = getattr(rest, "close", None)
                if close is not None:
                    close()
            raise
    return tuple(results)


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


async def _eager_gather(*awaitables: Any, on_child_failure: Any = None) -> tuple[Any, ...]:
    """The Agents SDK's `gather_with_cancel`, but each coroutine runs its first step at once
    (in a copy of the context, as a task would), and only one that waits becomes a task: what
    Python 3.12's eager task factory does. Same concurrency; no task for what finishes."""
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
        except BaseException as error:  # the task's own exception, as a task would hold it
            done.set_exception(error)
        else:
            futures.append(loop.create_task(_Resumed(awaitable, first), context=context))
            continue
        futures.append(done)
    if all(f.done() for f in futures):
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            if on_child_failure is not None:
                on_child_failure(errors[0])
            raise errors[0]  # type: ignore[misc]
        return tuple(f.result() for f in futures)
    gathered = asyncio.gather(*futures)
    try:
        return tuple(await gathered)
    except BaseException as error:
        if on_child_failure is not None:
            on_child_failure(error)
        for f in futures:
            if not f.done():
                f.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
        raise


def _patch_sdk_gather(replacement: Any) -> None:
    for name in (
        "agents.agent",
        "agents.run_internal.run_loop",
        "agents.run_internal.turn_resolution",
        "agents.run_internal.turn_preparation",
        "agents.run_internal.tool_planning",
        "agents.run_internal.tool_execution",
        "agents.run_internal.tool_actions",
    ):
        module = importlib.import_module(name)
        module.gather_with_cancel = replacement  # type: ignore[attr-defined]


def patch_sdk(name: str) -> None:
    """Applies the named patch ("" for none)."""
    if name == "sequential-gather":
        _patch_sdk_gather(_sequential_gather)
    elif name == "eager-gather":
        _patch_sdk_gather(_eager_gather)
    elif name:
        raise ValueError(f"unknown patch {name!r}")
