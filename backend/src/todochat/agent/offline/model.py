"""The ``Model`` adapter: the offline model as the OpenAI Agents SDK calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
    Usage,
)
from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses.response_prompt_param import ResponsePromptParam

from todochat.agent.offline.planning import decide
from todochat.agent.offline.responses import build_response, new_id, output_items, stream_events


class OfflineModel(Model):
    """Rule-based, offline replacement for an LLM driving the todo tools.

    Args:
        model_name: reported as ``Response.model`` (for logs/traces only).
    """

    def __init__(self, model_name: str = "offline-todo") -> None:
        self.model_name = model_name

    def _step_output(
        self, input: str | list[TResponseInputItem], tools: Sequence[Tool]
    ) -> list[TResponseOutputItem]:
        names = (str(getattr(tool, "name", "")) for tool in tools)
        return output_items(decide(input, names))

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        return ModelResponse(
            output=self._step_output(input, tools),
            usage=Usage(requests=1),
            response_id=new_id("resp"),
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        response = build_response(new_id("resp"), self.model_name, self._step_output(input, tools))
        for event in stream_events(response):
            yield event
