"""What the runtime records of a run: each model call and tool call with its time (the Runner's
hooks), a call of a tool that does not exist, and a streamed run's items as turn events."""

from __future__ import annotations

import logging
import time
from typing import Any

from agents import ModelResponse, RunContextWrapper, RunHooks, Tool
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.run_config import ToolErrorFormatterArgs
from agents.stream_events import RunItemStreamEvent
from agents.tool_context import ToolContext

from todochat.agent.events import EventSink, ToolFinished, ToolStarted
from todochat.agent.items import is_tool_error, tool_arguments, tool_call, unknown_tool_message
from todochat.agent.turn import TurnContext
from todochat.agent.turn_limits import REFUSED_KEY
from todochat.metrics import Metrics

log = logging.getLogger("todochat.agent")


class TurnHooks(RunHooks[TurnContext]):
    """Records each tool call with its result (paired by call id) and the time spent."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    async def on_llm_start(
        self, context: RunContextWrapper[TurnContext], agent: Any, *_: Any
    ) -> None:
        context.context._llm_started = time.perf_counter()

    async def on_llm_end(
        self, context: RunContextWrapper[TurnContext], agent: Any, response: ModelResponse
    ) -> None:
        turn = context.context
        elapsed_ms = (time.perf_counter() - turn._llm_started) * 1000
        turn.model_ms += elapsed_ms
        turn.model_calls += 1
        if self.metrics is not None:
            self.metrics.model_latency.observe(elapsed_ms / 1000)
        log.info(
            "model call",
            extra={
                "operation": "agent.model",
                "duration_ms": round(elapsed_ms, 2),
                "outcome": "ok",
                "step": turn.model_calls,
            },
        )
        # Tools of one step may run concurrently; answers list them in the model's order.
        for item in response.output:
            call_id = getattr(item, "call_id", None)
            if isinstance(call_id, str):
                turn.call_order.setdefault(call_id, len(turn.call_order))
                name, arguments = getattr(item, "name", None), getattr(item, "arguments", None)
                if isinstance(name, str):
                    raw = arguments if isinstance(arguments, str) else ""
                    turn.requested[call_id] = (name, raw)

    async def on_tool_start(
        self, context: RunContextWrapper[TurnContext], agent: Any, tool: Tool
    ) -> None:
        if isinstance(context, ToolContext):
            context.context._tool_started[context.tool_call_id] = time.perf_counter()

    async def on_tool_end(
        self, context: RunContextWrapper[TurnContext], agent: Any, tool: Tool, result: object
    ) -> None:
        if not isinstance(context, ToolContext):
            return
        turn = context.context
        started = turn._tool_started.pop(context.tool_call_id, time.perf_counter())
        elapsed_ms = (time.perf_counter() - started) * 1000
        turn.tool_ms += elapsed_ms
        call = tool_call(
            call_id=context.tool_call_id,
            name=context.tool_name,
            arguments_json=context.tool_arguments,
            output=result,
        )
        turn.tool_calls.append(call)
        outcome = "ok"
        if isinstance(call.result, dict) and REFUSED_KEY in call.result:
            outcome = "refused"
            turn.limits.refused += 1
        elif is_tool_error(call):
            outcome = "error"
        if self.metrics is not None:
            self.metrics.tool_calls.labels(context.tool_name, outcome).inc()
            self.metrics.tool_latency.labels(context.tool_name).observe(elapsed_ms / 1000)
        log.info(
            "tool call",
            extra={
                "operation": f"agent.tool.{context.tool_name}",
                "duration_ms": round(elapsed_ms, 2),
                "outcome": outcome,
            },
        )


def tool_error_in_our_words(
    args: ToolErrorFormatterArgs[TurnContext], tool_names: list[str]
) -> str | None:
    """A call of a tool that does not exist goes back to the model as a tool error it can
    correct (not a failed turn), and is stored with the turn like any other call."""
    if args.kind != "tool_not_found":
        return None
    message = unknown_tool_message(args.tool_name, tool_names)
    turn = args.run_context.context
    _, arguments = turn.requested.get(args.call_id, (args.tool_name, ""))
    turn.tool_calls.append(
        tool_call(
            call_id=args.call_id, name=args.tool_name, arguments_json=arguments, output=message
        )
    )
    log.warning(
        "model called a tool that does not exist",
        extra={"operation": "agent.tool.unknown", "outcome": "error"},
    )
    return message


def report_item(event: RunItemStreamEvent, context: TurnContext, on_event: EventSink) -> None:
    """A streamed run's item as the turn's event: a tool call asked for, or its result."""
    item = event.item
    if event.name == "tool_called" and isinstance(item, ToolCallItem):
        raw = item.raw_item
        call_id = getattr(raw, "call_id", None)
        name = getattr(raw, "name", None)
        if isinstance(call_id, str) and isinstance(name, str):
            arguments = tool_arguments(getattr(raw, "arguments", None))
            on_event(ToolStarted(call_id=call_id, name=name, arguments=arguments))
    elif event.name == "tool_output" and isinstance(item, ToolCallOutputItem):
        call_id = getattr(item.raw_item, "call_id", None)
        if isinstance(item.raw_item, dict):
            call_id = item.raw_item.get("call_id")
        # The hooks recorded the finished call (decoded once) before the item was emitted.
        for call in context.tool_calls:
            if call.id == call_id:
                on_event(ToolFinished(call=call))
                break
