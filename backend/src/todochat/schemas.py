"""Schemas shared by every domain: the one error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldProblem] | None = None

    model_config = {"json_schema_extra": {"examples": [{"detail": "Task 7 not found"}]}}


def problems(raw: list[dict[str, Any]]) -> list[FieldProblem]:
    # Only location, message and type: pydantic's `input` would echo passwords back.
    return [
        FieldProblem(
            loc=[p for p in e.get("loc", ()) if isinstance(p, str | int)],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in raw
    ]


def error_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    errors: list[FieldProblem] | None = None,
) -> JSONResponse:
    """The one way an error is answered: `{"detail": ...}` (and `errors` for invalid input).
    A response is also an ASGI app, so middleware answers with it too."""
    body = ErrorBody(detail=detail, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)
