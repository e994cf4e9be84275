"""How much one chat turn may do, and the honest answer when it hits a limit.

A turn runs at most AGENT_MAX_TOOL_CALLS tool calls, counted across the model's steps and
within one step (a model can ask for a thousand calls at once). `CappedModel` stands between
the Runner and the model: calls past the cap are cut from the model's answer before the Runner
sees them, so they are never run, logged or stored. A write a rate limit refuses is a tool
error the model sees (`{"error": ..., "refused": "rate_limit"}`).

When either happens, the turn ends with a reply written here from what the tools really did,
not by the model: a model's own summary could claim changes that were never made.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
)
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseOutputItem, TResponseStreamEvent
from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from todochat.conversations.schemas import ToolCall

REFUSED_KEY = "refused"
# Enough to name what happened; a reply never lists a thousand titles.
_LISTED = 10
_EXAMPLES = 5

_DONE = {
    "add_task": "added",
    "complete_task": "completed",
    "delete_task": "deleted",
    "update_task": "updated",
}
_TODO = {
    "add_task": "add",
    "complete_task": "complete",
    "delete_task": "delete",
    "update_task": "update",
    "list_tasks": "list",
}


@dataclass
class TurnLimits:
    """The tool-call cap of one turn, and what went past a limit."""

    max_calls: int
    admitted: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_examples: list[str] = field(default_factory=list)
    refused: int = 0

    @property
    def reached(self) -> bool:
        return bool(self.dropped) or self.refused > 0

    def admit(self, output: list[TResponseOutputItem]) -> list[TResponseOutputItem]:
        """The model's output with the tool calls past the cap left out (and counted)."""
        kept: list[TResponseOutputItem] = []
        for item in output:
            if isinstance(item, ResponseFunctionToolCall):
                if self.admitted >= self.max_calls:
                    self._drop(item)
                    continue
                self.admitted += 1
            kept.append(item)
        return kept

    def _drop(self, call: ResponseFunctionToolCall) -> None:
        self.dropped[call.name] += 1
        if len(self.dropped_examples) < _EXAMPLES:
            try:
                arguments = json.loads(call.arguments or "{}")
            except ValueError:
                arguments = {}
            about = _describe(call.name, arguments if isinstance(arguments, dict) else {}, {})
            self.dropped_examples.append(f"{_TODO.get(call.name, call.name)} {about}")


def _quoted(title: Any) -> str:
    text = str(title)
    return f"'{text[:60]}…'" if len(text) > 60 else f"'{text}'"


def _describe(name: str, arguments: dict[str, Any], result: dict[str, Any]) -> str:
    """What one call is about: a title where there is one, else the task's number."""
    task_id = result.get("task_id", arguments.get("task_id"))
    title = result.get("title", arguments.get("title"))
    if name == "list_tasks":
        return "your task list"
    if title and task_id:
        return f"{_quoted(title)} (task #{task_id})"
    if title:
        return _quoted(title)
    return f"task #{task_id}" if task_id is not None else name


def _listing(entries: list[str]) -> str:
    shown = entries[:_LISTED]
    more = len(entries) - len(shown)
    text = "; ".join(shown)
    return f"{text}; and {more} more" if more else text


def _outcomes(calls: list[ToolCall]) -> tuple[list[str], list[str], list[str], str]:
    """What the calls did: done, failed and refused (each a phrase), and a refusal's reason."""
    done: list[str] = []
    failed: list[str] = []
    refused: list[str] = []
    reason = ""
    for call in calls:
        name = call.name
        outcome = call.result if isinstance(call.result, dict) else {}
        about = _describe(name, call.arguments, outcome)
        if REFUSED_KEY in outcome:
            refused.append(f"{_TODO.get(name, name)} {about}")
            reason = reason or str(outcome.get("error", "")).removeprefix("Not done: ")
        elif "error" in outcome:
            failed.append(f"{_TODO.get(name, name)} {about}: {outcome['error']}")
        elif name in _DONE:
            done.append(f"{_DONE[name]} {about}")
    return done, failed, refused, reason


def account(calls: list[ToolCall]) -> str:
    """What the turn's tools changed and what did not work, in the runtime's own words; empty
    when no tool changed anything and none failed."""
    done, failed, refused, _ = _outcomes(calls)
    sentences = [f"Here is what I did: {_listing(done)}."] if done else []
    if failed or refused:
        sentences.append(f"These did not work: {_listing(failed + refused)}.")
    return " ".join(sentences)


def empty_reply(calls: list[ToolCall]) -> str:
    """The turn's answer when the model said nothing: what happened, never a claim of success."""
    done, failed, refused, _ = _outcomes(calls)
    if done or failed or refused:
        return account(calls)
    if calls:
        return "I looked at your tasks but changed nothing. Could you tell me what to do?"
    return "I did not change anything. Could you say what you would like in another way?"


def limited_reply(calls: list[ToolCall], limits: TurnLimits) -> str:
    """The turn's answer after a limit: what was done, what failed, what was not done."""
    done, failed, refused, reason = _outcomes(calls)
    sentences = [f"Here is what I did: {_listing(done)}." if done else "I did not change any task."]
    if failed:
        sentences.append(f"These did not work: {_listing(failed)}.")
    if refused:
        sentences.append(f"Not done: {_listing(refused)}. {reason[:1].upper()}{reason[1:]}".strip())
    if limits.dropped:
        count = limits.dropped.total()
        actions = ", ".join(
            f"{_TODO.get(name, name)} {n:,} {'task' if n == 1 else 'tasks'}"
            for name, n in limits.dropped.most_common()
        )
        examples = "; ".join(limits.dropped_examples)
        sentences.append(
            f"Not done: {count:,} more {'action' if count == 1 else 'actions'} ({actions}; "
            f"for example {examples}), because I run at most {limits.max_calls} actions for "
            "one message. Please send the rest in another message."
        )
    return " ".join(sentences)


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        type="message",
        role="assistant",
        status="completed",
        id=f"msg_{uuid.uuid4().hex}",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])],
    )


class CappedModel(Model):
    """The turn's model with the cap applied to each answer (one instance per turn). A
    streamed answer is capped in its final event, which is what the Runner acts on."""

    def __init__(self, model: Model, limits: TurnLimits, reply: Callable[[], str]) -> None:
        self.model = model
        self.limits = limits
        self.reply = reply

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
        response = await self.model.get_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )
        response.output = self._capped(list(response.output))
        return response

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
        async for event in self.model.stream_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        ):
            if isinstance(event, ResponseCompletedEvent):
                event.response.output = self._capped(list(event.response.output))
            yield event

    def _capped(self, output: list[TResponseOutputItem]) -> list[TResponseOutputItem]:
        before = self.limits.dropped.total()
        kept = self.limits.admit(output)
        if self.limits.dropped.total() == before:
            return output
        if not any(isinstance(item, ResponseFunctionToolCall) for item in kept):
            # Nothing of this step runs: the turn ends here, with what the tools did so far.
            return [_message(self.reply())]
        return kept

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self.model.get_retry_advice(request)

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.model._cleanup_on_run_end(owner)
