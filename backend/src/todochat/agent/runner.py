"""The agent runtime: one Agent, one model, one in-process MCP connection per app instance.

`AgentRuntime.run_turn` runs a single chat turn through the Agents SDK `Runner`. It holds no
database connection: tools open their own short units of work through MCP.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Coroutine
from typing import Any

import openai
from agents import Agent, MaxTurnsExceeded, Model, ModelSettings, RunConfig, Runner
from agents.exceptions import AgentsException, ModelBehaviorError, ModelTimeoutError
from agents.models.openai_provider import OpenAIProvider
from agents.run_config import ToolExecutionConfig
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent
from mcp.server import MCPServer
from openai import DefaultAioHttpClient

from todochat.agent import eager_gather, sdk_fastpaths
from todochat.agent.events import EventSink, StepStarted, TextDelta
from todochat.agent.hooks import TurnHooks, report_item, tool_error_in_our_words
from todochat.agent.instructions import INSTRUCTIONS
from todochat.agent.items import history_as_input
from todochat.agent.offline import OfflineModel
from todochat.agent.openai_client import AgentOpenAI
from todochat.agent.tools import FixedToolsAgent, InProcessMCPServer
from todochat.agent.turn import (
    ModelFailure,
    TurnContext,
    TurnResult,
    stop_when_limited,
    with_history,
)
from todochat.agent.turn_limits import CappedModel, TurnLimits, empty_reply
from todochat.agent.upstream import UpstreamState, classify, probe
from todochat.config import Settings
from todochat.conversations.schemas import MessageRead
from todochat.errors import DatabaseUnavailable
from todochat.lanes import Lanes
from todochat.logs import request_id_var
from todochat.metrics import Metrics
from todochat.schemas import without_bad_characters

log = logging.getLogger("todochat.agent")

MAX_TURNS_REPLY = (
    "That took more steps than I can take in one go, so I stopped. Here is what I did so far; "
    "could you tell me the next step in a simpler way?"
)


# What a failing or stalling model upstream raises through the Runner.
_MODEL_FAILURES = (
    openai.APIError,
    ModelTimeoutError,
    ModelBehaviorError,
    TimeoutError,
    AgentsException,
)


def build_model(settings: Settings) -> tuple[Model, AgentOpenAI | None]:
    """The agent's model, and the HTTP client to close at shut-down if it has one."""
    if settings.resolved_model_provider == "offline":
        return OfflineModel(model_name=settings.model_name), None
    client = AgentOpenAI(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_s,
        # One attempt per call: a stalled upstream must answer 503 within OPENAI_TIMEOUT_S,
        # and the client can retry the whole turn with the same Idempotency-Key.
        max_retries=0,
        string_content=settings.openai_string_content,
        # aiohttp under the client instead of httpx's own pool: 7% fewer Python calls a turn
        # on the OpenAI path, and no pool bookkeeping that grows with concurrent calls (P8).
        http_client=DefaultAioHttpClient(),
    )
    provider = OpenAIProvider(
        openai_client=client, use_responses=settings.openai_api == "responses"
    )
    return provider.get_model(settings.openai_model), client


class AgentRuntime:
    def __init__(
        self, *, settings: Settings, mcp_server: MCPServer, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.lanes = Lanes(settings.chat_lanes)
        if settings.agent_eager_gather:
            eager_gather.install()
        if settings.agent_sdk_fastpaths:
            sdk_fastpaths.install()
        self.tools = InProcessMCPServer(mcp_server)
        model, self._client = build_model(settings)
        # The MCP tools are converted once in `start` (see agent/tools.py), not on every step.
        self.agent: Agent[TurnContext] = FixedToolsAgent(
            name="todo-assistant",
            instructions=INSTRUCTIONS,
            model=model,
            tools=[],
            model_settings=ModelSettings(
                temperature=0.2,
                parallel_tool_calls=False,
                # Sent as set: some servers (llama-cpp-python) take a missing one for "none".
                tool_choice=None
                if settings.openai_tool_choice == "unset"
                else settings.openai_tool_choice,
            ),
            tool_use_behavior=stop_when_limited,
        )
        self.run_config = RunConfig(
            tracing_disabled=not settings.openai_tracing,
            trace_include_sensitive_data=False,
            # A todo list is order-sensitive ("add X, then list"): run one step's calls in turn.
            tool_execution=ToolExecutionConfig(max_function_tool_concurrency=1),
            call_model_input_filter=with_history,
            tool_not_found_behavior="return_error_to_model",
            tool_error_formatter=lambda args: tool_error_in_our_words(
                args, [tool.name for tool in self.agent.tools]
            ),
        )
        self.hooks = TurnHooks(metrics)
        # Turns that run on after their request answered (streamed turns); see `detach`.
        self._detached: set[asyncio.Task[None]] = set()
        # The model upstream's last known state, for /health (agent/upstream.py).
        self.upstream = UpstreamState()
        if self._client is None:
            self.upstream.set("ok", "the built-in offline model")
        self._probe: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.tools.connect()
        self.agent.tools = await self.tools.function_tools(self.agent)
        if self._client is not None:
            # In the background: an upstream that hangs must not hold up start-up.
            self._probe = asyncio.create_task(
                probe(
                    self._client,
                    model=self.settings.openai_model,
                    timeout_s=min(self.settings.openai_timeout_s, 10),
                    state=self.upstream,
                )
            )

    @property
    def _secrets(self) -> tuple[str, ...]:
        key = self.settings.openai_api_key
        return (key.get_secret_value(),) if key is not None else ()

    def detach(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` (a turn) as a task of its own, independent of the request that began it;
        `stop` waits for it."""
        task = asyncio.create_task(work)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    async def stop(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self._detached:
            # Turns still running get the shut-down grace period to finish and be stored.
            _, late = await asyncio.wait(
                set(self._detached), timeout=self.settings.shutdown_timeout_s
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await self.tools.cleanup()
        finally:
            if self._client is not None:
                await self._client.close()

    async def run_turn(
        self,
        *,
        user_id: str,
        history: list[MessageRead],
        message: str,
        effect_scope: str | None = None,
        on_event: EventSink | None = None,
    ) -> TurnResult:
        """Run one turn on the stored history before `message`. With `on_event`, the model
        streams and each step, piece of text and tool call is reported as it happens.

        Raises ModelFailure when the model upstream fails (with the tool calls already made),
        DatabaseUnavailable when a tool could not reach the database.
        """
        context = TurnContext(
            user_id=user_id,
            history=history_as_input(history),
            limits=TurnLimits(max_calls=self.settings.agent_max_tool_calls),
            effect_scope=effect_scope,
            request_id=request_id_var.get(),
        )
        # The cap needs this turn's count, so the model is wrapped per turn.
        model = self.agent.model
        if not isinstance(model, Model):
            raise TypeError("the agent's model must be a Model instance (see build_model)")
        # A shallow copy, not dataclasses.replace: replace re-runs RunConfig.__post_init__,
        # which resolves the class's type hints, a seventh of a turn's CPU (P15).
        run_config = copy.copy(self.run_config)
        run_config.model = CappedModel(model, context.limits, context.limited_reply)
        try:
            async with asyncio.timeout(self.settings.chat_turn_timeout_s):
                if on_event is None:
                    result = await Runner.run(
                        self.agent,
                        [{"role": "user", "content": message}],
                        context=context,
                        max_turns=self.settings.agent_max_turns,
                        hooks=self.hooks,
                        run_config=run_config,
                    )
                    final_output = result.final_output
                else:
                    final_output = await self._run_streamed(context, message, on_event, run_config)
            # A model that said nothing gets an account of what happened, never "Done.".
            reply = without_bad_characters(str(final_output or "").strip()) or empty_reply(
                context.ordered_tool_calls()
            )
            if self._client is not None:
                self.upstream.set("ok")
        except MaxTurnsExceeded:
            log.warning(
                "agent hit the turn limit", extra={"max_turns": self.settings.agent_max_turns}
            )
            reply = MAX_TURNS_REPLY
        except Exception as exc:
            if context.database_outage:
                # A tool could not reach the database: the turn fails as a whole (503).
                raise DatabaseUnavailable() from exc
            if not isinstance(exc, _MODEL_FAILURES):
                raise
            failure = classify(exc, secrets=self._secrets)
            self.upstream.record_failure(failure)
            if self.metrics is not None:
                self.metrics.model_failures.labels(failure.kind).inc()
            raise ModelFailure(failure, context.ordered_tool_calls()) from exc
        finally:
            if context.limits.dropped:
                # One line for the calls past the cap, however many there were.
                log.warning(
                    "tool calls past the per-turn cap were not run",
                    extra={
                        "operation": "agent.tool_cap",
                        "max_tool_calls": context.limits.max_calls,
                        "dropped": context.limits.dropped.total(),
                    },
                )
        return TurnResult(
            reply=reply,
            tool_calls=context.ordered_tool_calls(),
            model_ms=context.model_ms,
            tool_ms=context.tool_ms,
            model_calls=context.model_calls,
        )

    async def _run_streamed(
        self, context: TurnContext, message: str, on_event: EventSink, run_config: RunConfig
    ) -> Any:
        """`Runner.run_streamed`, its events translated for `on_event`; the final output."""
        streamed = Runner.run_streamed(
            self.agent,
            [{"role": "user", "content": message}],
            context=context,
            max_turns=self.settings.agent_max_turns,
            hooks=self.hooks,
            run_config=run_config,
        )
        try:
            async for event in streamed.stream_events():
                if isinstance(event, RawResponsesStreamEvent):
                    data = event.data
                    if data.type == "response.created":
                        on_event(StepStarted())
                    elif data.type == "response.output_text.delta":
                        on_event(TextDelta(text_id=data.item_id, delta=data.delta))
                elif isinstance(event, RunItemStreamEvent):
                    report_item(event, context, on_event)
        finally:
            # A time-out or a failure here must not leave the run going on without us.
            streamed.cancel()
        # The SDK stores on every streamed result a clean-up closure that refers to the result:
        # a cycle, freed only by the collector, which stops the worker to find it (P20). Its
        # clean-up has run by the end of `stream_events`. Private attribute of the pinned
        # openai-agents; tests/agent/test_garbage.py guards it.
        streamed._sandbox_cleanup = None
        return streamed.final_output
