"""Schemas shared by every domain: the one error shape and the one rule for text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from starlette.responses import JSONResponse


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldProblem] | None = None
    # A chat turn that failed after its conversation was created or found: where to go on.
    conversation_id: int | None = None
    # ...and what its tools had already done by then, in words.
    done: str | None = None

    model_config = {"json_schema_extra": {"examples": [{"detail": "Task 7 not found"}]}}


def problems(raw: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    # Only location, message and type: pydantic's `input` would echo passwords back.
    return [
        FieldProblem(
            loc=[p for p in e.get("loc", ()) if isinstance(p, str | int)],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in raw
    ]


def describe(problem: FieldProblem, *, skip: tuple[str, ...] = ()) -> str:
    """One problem as the API says it: "title: String should have at least 1 character"."""
    if problem.type == "value_error":
        # Our own validators already speak in sentences ("Message cannot be empty").
        return problem.msg.removeprefix("Value error, ")
    field = ".".join(str(p) for p in problem.loc if p not in skip)
    return f"{field}: {problem.msg}" if field else problem.msg


# --- text -------------------------------------------------------------------------------------

# What no text field takes (D35 in specs/decisions.md): the control characters (Unicode Cc)
# except tab, line feed and carriage return, NUL among them, which PostgreSQL cannot store; and
# the surrogate code points, which only a lone JSON escape like "\ud800" can produce and which
# no UTF-8 text can hold. One character class, so checking it is linear.
CONTROL_CHARACTERS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
BAD_CHARACTERS = CONTROL_CHARACTERS + r"\ud800-\udfff"
# The JSON schema states the control characters only: validators whose regex engine works on
# Unicode scalar values (Rust's, Go's) refuse a pattern that names surrogates, and no UTF-8
# document can hold a lone one anyway.
TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
BAD_CHARACTERS_MESSAGE = "must not contain control characters or unpaired surrogates"
_BAD_CHARACTER = re.compile(f"[{BAD_CHARACTERS}]")


def has_bad_characters(value: str) -> bool:
    return _BAD_CHARACTER.search(value) is not None


def _refuse_bad_characters(value: object) -> object:
    if isinstance(value, str) and has_bad_characters(value):
        raise PydanticCustomError("bad_characters", BAD_CHARACTERS_MESSAGE)
    return value


@dataclass(frozen=True, slots=True)
class Printable:
    """`Annotated[str, ..., Printable()]`: the value is refused with a 422 when it holds a bad
    character, before any other check (pydantic's own string checks would fail on a surrogate
    with a message about "raw data"), and the JSON schema says so with `pattern`.

    Put it last in `Annotated`, after `StringConstraints`, so it runs first.
    """

    pattern: str = TEXT_PATTERN

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            _refuse_bad_characters, handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


def without_bad_characters(value: Any) -> Any:
    """The model's words, made storable: no user typed them, so there is nobody to answer 422,
    and PostgreSQL would refuse a NUL where SQLite stores it. Each bad character becomes
    U+FFFD in strings, keys included, however deep; everything else is returned as it is."""
    if isinstance(value, str):
        return _BAD_CHARACTER.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_bad_characters(k): without_bad_characters(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_bad_characters(v) for v in value]
    return value


def error_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    errors: list[FieldProblem] | None = None,
    conversation_id: int | None = None,
    done: str | None = None,
) -> JSONResponse:
    """The one way an error is answered: `{"detail": ...}` (and `errors` for invalid input,
    `conversation_id` and `done` for a failed chat turn). A response is also an ASGI app, so
    middleware answers with it too."""
    body = ErrorBody(
        detail=detail, errors=errors, conversation_id=conversation_id, done=done
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)
