from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from todochat.conversations.schemas import ToolCall

MAX_MESSAGE_CHARS = 10_000
# What str.strip() removes. The schema of `message` says "at least one character outside this set",
# which is exactly the emptiness rule below, so clients and fuzzers see what is accepted.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_NOT_BLANK = f"[^{_WHITESPACE}]"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: int | None = Field(
        default=None,
        gt=0,
        le=2**31 - 1,
        description="Continue this conversation; omit to start one.",
    )
    message: str = Field(
        description="What the user says (trimmed, 1-10000 characters).",
        json_schema_extra={"minLength": 1, "pattern": _NOT_BLANK},
    )

    @field_validator("message")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("Message cannot be empty")
        if len(value) > MAX_MESSAGE_CHARS:
            raise ValueError(f"Message too long (max {MAX_MESSAGE_CHARS} characters)")
        return value


class ChatResponse(BaseModel):
    conversation_id: int
    response: str
    tool_calls: list[ToolCall]
