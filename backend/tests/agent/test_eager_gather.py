"""agent/eager_gather.py: the SDK's `gather_with_cancel` contract, without a task for what
finishes at once; and a guard that the pinned SDK still gathers through the replaced name."""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import inspect

import pytest

from todochat.agent import eager_gather as eager
from todochat.agent.eager_gather import SDK_MODULES, eager_gather

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


async def at_once(value: int) -> int:
    return value


async def after(delay: float, value: int) -> int:
    await asyncio.sleep(delay)
    return value


async def fails_at_once() -> int:
    raise ValueError("at once")


async def fails_after(delay: float) -> int:
    await asyncio.sleep(delay)
    raise ValueError("later")


def test_the_sdk_still_gathers_through_the_name_we_replace() -> None:
    """Fails when an openai-agents release moves its gathers: raise the pin only with a look."""
    from agents.util import _asyncio_tasks

    original = _asyncio_tasks.gather_with_cancel
    assert list(inspect.signature(original).parameters) == ["awaitables", "on_child_failure"]
    eager.install()
    for name in SDK_MODULES:
        module = importlib.import_module(name)
        assert module.gather_with_cancel is eager_gather, name  # type: ignore[attr-defined]
    run_loop = inspect.getsource(importlib.import_module("agents.run_internal.run_loop"))
    assert run_loop.count("await gather_with_cancel(") >= 5


async def test_results_come_in_order_and_only_waiting_ones_become_tasks() -> None:
    before = len(asyncio.all_tasks())
    gathering = asyncio.ensure_future(
        eager_gather(at_once(1), after(0.05, 2), at_once(3), after(0.01, 4))
    )
    await asyncio.sleep(0)
    # The gathering task and the two coroutines that wait; none for those that finished.
    assert len(asyncio.all_tasks()) - before == 3
    assert await gathering == (1, 2, 3, 4)


async def test_nothing_waits_so_no_task_at_all() -> None:
    created: list[object] = []
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()
    loop.set_task_factory(
        lambda lp, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=lp, **kw)
    )
    try:
        assert await eager_gather(at_once(1), at_once(2)) == (1, 2)
    finally:
        loop.set_task_factory(factory)
    assert created == []


@pytest.mark.parametrize("failing", [fails_at_once, lambda: fails_after(0.01)])
async def test_a_failure_cancels_the_others_and_is_reported(failing) -> None:
    seen: list[BaseException] = []
    slow = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(ValueError):
        await eager_gather(failing(), slow, at_once(1), on_child_failure=seen.append)
    assert [str(e) for e in seen] in (["at once"], ["later"])
    assert slow.cancelled()


async def test_cancelling_the_gather_cancels_what_still_waits() -> None:
    child = after(10, 1)
    gathering = asyncio.ensure_future(eager_gather(child, at_once(2)))
    await asyncio.sleep(0.01)
    waiting = [t for t in asyncio.all_tasks() if t is not gathering and not t.done()]
    waiting = [t for t in waiting if type(t.get_coro()).__name__ == "_Resumed"]
    assert len(waiting) == 1  # the coroutine that sleeps, taken over by a task
    gathering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathering
    assert waiting[0].cancelled()


async def test_each_coroutine_runs_in_a_copy_of_the_context_as_a_task_would() -> None:
    async def sets_and_waits() -> str:
        VAR.set("inner")
        await asyncio.sleep(0)
        return VAR.get()

    async def sets_at_once() -> str:
        VAR.set("inner-at-once")
        return VAR.get()

    assert await eager_gather(sets_and_waits(), sets_at_once()) == ("inner", "inner-at-once")
    assert VAR.get() == "outer"
