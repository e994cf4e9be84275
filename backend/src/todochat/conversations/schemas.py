from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]
    result: Any


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str | None
    created_at: datetime
    updated_at: datetime


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: Literal["user", "assistant"]
    content: str
    tool_calls: list[ToolCall] | None
    created_at: datetime


class TurnStart(BaseModel):
    """What a chat turn needs before the model runs."""

    conversation_id: int
    message_id: int
    history: list[MessageRead]
