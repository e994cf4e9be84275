"""Responses-API output objects and the stream events for them."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, cast

from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)

from todochat.agent.offline.intent import Step


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def output_items(step: Step) -> list[TResponseOutputItem]:
    if isinstance(step, str):
        text = ResponseOutputText(type="output_text", text=step, annotations=[], logprobs=[])
        message = ResponseOutputMessage(
            type="message", role="assistant", status="completed", id=new_id("msg"), content=[text]
        )
        return [message]
    return [
        ResponseFunctionToolCall(
            type="function_call",
            call_id=new_id("call"),
            name=call.name,
            arguments=json.dumps(call.args),
            id=new_id("fc"),
            status="completed",
        )
        for call in step
    ]


def build_response(response_id: str, model: str, output: list[TResponseOutputItem]) -> Response:
    return Response(
        id=response_id,
        created_at=time.time(),
        model=model,
        object="response",
        output=output,
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=True,
        status="completed",
        # No usage: the Runner then counts the request itself; there are no tokens to report.
        usage=None,
    )


_WORD_CHUNK = re.compile(r"\S+\s*|\s+")


def _word_chunks(text: str) -> list[str]:
    """Stream text word by word (keeping whitespace) so UIs show it typing."""
    return _WORD_CHUNK.findall(text) or [text]


class _EventLog:
    """Collects stream events with consecutive sequence numbers."""

    def __init__(self) -> None:
        self.events: list[TResponseStreamEvent] = []

    def add(self, event_cls: Any, **fields: Any) -> None:
        event = event_cls.model_validate({**fields, "sequence_number": len(self.events)})
        self.events.append(cast(TResponseStreamEvent, event))


def _item_events(log: _EventLog, index: int, item: TResponseOutputItem) -> None:
    if isinstance(item, ResponseFunctionToolCall):
        pending = item.model_copy(update={"arguments": "", "status": "in_progress"})
        log.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            item=pending,
            output_index=index,
        )
        ids = {"item_id": item.id or item.call_id, "output_index": index}
        log.add(
            ResponseFunctionCallArgumentsDeltaEvent,
            type="response.function_call_arguments.delta",
            delta=item.arguments,
            **ids,
        )
        log.add(
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            arguments=item.arguments,
            name=item.name,
            **ids,
        )
    elif isinstance(item, ResponseOutputMessage):
        empty = item.model_copy(update={"content": [], "status": "in_progress"})
        log.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            item=empty,
            output_index=index,
        )
        for part_index, part in enumerate(item.content):
            text = part.text if isinstance(part, ResponseOutputText) else ""
            ids = {"item_id": item.id, "output_index": index, "content_index": part_index}
            blank = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
            log.add(
                ResponseContentPartAddedEvent, type="response.content_part.added", part=blank, **ids
            )
            for chunk in _word_chunks(text):
                log.add(
                    ResponseTextDeltaEvent,
                    type="response.output_text.delta",
                    delta=chunk,
                    logprobs=[],
                    **ids,
                )
            log.add(
                ResponseTextDoneEvent,
                type="response.output_text.done",
                text=text,
                logprobs=[],
                **ids,
            )
            log.add(
                ResponseContentPartDoneEvent, type="response.content_part.done", part=part, **ids
            )
    log.add(
        ResponseOutputItemDoneEvent, type="response.output_item.done", item=item, output_index=index
    )


def stream_events(response: Response) -> list[TResponseStreamEvent]:
    """The Responses-API event sequence for an already computed response."""
    log = _EventLog()
    in_progress = response.model_copy(update={"output": [], "status": "in_progress", "usage": None})
    log.add(ResponseCreatedEvent, type="response.created", response=in_progress)
    log.add(ResponseInProgressEvent, type="response.in_progress", response=in_progress)
    for index, item in enumerate(response.output):
        _item_events(log, index, item)
    log.add(ResponseCompletedEvent, type="response.completed", response=response)
    return log.events
