"""The agent's tool list: the SDK's answer, without a task per tool at every model step (P11)."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, RunContextWrapper, function_tool

from todochat.agent.turn import TurnContext


def _counting_tasks(loop: asyncio.AbstractEventLoop) -> list[str]:
    names: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        names.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return names


async def test_the_agent_offers_the_sdks_tool_list_without_a_task_per_tool(
    app, user, monkeypatch
) -> None:
    import agents.agent
    from agents.util import _asyncio_tasks

    # The SDK's own gather (the service replaces it with agent/eager_gather.py, P14).
    monkeypatch.setattr(agents.agent, "gather_with_cancel", _asyncio_tasks.gather_with_cancel)
    agent = app.state.agent_runtime.agent
    context = RunContextWrapper(context=TurnContext(user_id=user.id))
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    started = _counting_tasks(loop)
    try:
        sdk_tools = await Agent.get_all_tools(agent, context)
        sdk_tasks = len(started)
        ours = await agent.get_all_tools(context)
    finally:
        loop.set_task_factory(previous)
    assert [t.name for t in ours] == [t.name for t in sdk_tools]
    assert {t.name for t in ours} >= {"add_task", "list_tasks", "complete_task", "delete_task"}
    assert all(a is b for a, b in zip(ours, sdk_tools, strict=True))
    # The SDK's way starts one task per tool; ours none.
    assert sdk_tasks >= len(sdk_tools)
    assert len(started) == sdk_tasks


async def test_a_tool_that_can_be_disabled_is_left_to_the_sdk(app, user) -> None:
    @function_tool(is_enabled=lambda ctx, agent: False)
    def hidden() -> str:
        """Never offered."""
        return "no"

    @function_tool
    def shown() -> str:
        """Offered."""
        return "yes"

    agent = app.state.agent_runtime.agent.clone(tools=[hidden, shown])
    context = RunContextWrapper(context=TurnContext(user_id=user.id))
    assert [t.name for t in await agent.get_all_tools(context)] == ["shown"]
