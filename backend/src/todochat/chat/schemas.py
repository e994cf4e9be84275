from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from todochat.conversations.schemas import ToolCall
from todochat.schemas import CONTROL_CHARACTERS, Printable, has_bad_characters

MAX_MESSAGE_CHARS = 10_000
# What str.strip() removes. The schema of `message` says "no bad character, and at least one
# character outside this set", which is exactly the rules below, so clients and fuzzers see
# what is accepted. The leading run and the first other character cannot overlap, so the
# pattern matches in one pass.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_BLANK = "".join(c for c in _WHITESPACE if not has_bad_characters(c))
MESSAGE_PATTERN = f"^[{_BLANK}]*[^{_WHITESPACE}{CONTROL_CHARACTERS}][^{CONTROL_CHARACTERS}]*$"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: "1", 1.0 and true are not conversation ids, whatever lax parsing would make of them.
    conversation_id: int | None = Field(
        default=None,
        strict=True,
        gt=0,
        le=2**31 - 1,
        description="Continue this conversation; omit to start one.",
    )
    message: Annotated[str, Printable(MESSAGE_PATTERN)] = Field(
        description="What the user says (trimmed, 1-10000 characters).",
        json_schema_extra={"minLength": 1},
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
