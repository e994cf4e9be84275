"""What a streamed turn reports while it runs, in this service's terms (not the SDK's).

A model step starts (`StepStarted`), its text arrives in pieces (`TextDelta`, one `text_id`
per text item), a tool is called (`ToolStarted`) and answers (`ToolFinished`). The turn's end
is the `TurnResult` that `AgentRuntime.run_turn` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from todochat.conversations.schemas import ToolCall


@dataclass(frozen=True)
class StepStarted:
    """A model call begins."""


@dataclass(frozen=True)
class TextDelta:
    text_id: str
    delta: str


@dataclass(frozen=True)
class ToolStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    call: ToolCall


TurnEvent = StepStarted | TextDelta | ToolStarted | ToolFinished
EventSink = Callable[[TurnEvent], None]
