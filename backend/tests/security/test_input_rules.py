"""Bad characters and loose types (OWASP API8, API10): NUL, the other control characters and
lone surrogates are 422 in every text field of every JSON body, the same on SQLite and
PostgreSQL (which cannot store a NUL); ids in bodies are JSON integers, nothing that converts to
one; and what the model writes is stored safely, since no user typed it.

The fields are found from the route table, so a text field added later is attacked too. Every
attack has its control: the same request with clean text is accepted.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fakes.openai_upstream import FakeUpstream, text, tool_call
from fastapi import FastAPI

from tests.conftest import RunningApp, User
from tests.security.routes import ALL, Endpoint, make_owner, request_for
from tests.security.support import snapshot
from todochat.models import metadata

BAD = {
    "nul": "\u0000",
    "lone-high-surrogate": "\ud800",
    "lone-low-surrogate": "\udfff",
    "escape": "\u001b",
    "c1-control": "\u009b",
}
REFUSED = "must not contain control characters or unpaired surrogates"


def _is_text(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "string" for option in options)


TEXT_FIELDS = [
    (endpoint, name)
    for endpoint in ALL
    if endpoint.body_schema is not None
    for name, schema in endpoint.body_schema.get("properties", {}).items()
    if _is_text(schema)
]


async def _accounts(app: FastAPI) -> int:
    async with app.state.database.engine.connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).select_from(metadata.tables["users"]))
        )


def _spoiled(value: str, bad: str, *, email: bool) -> str:
    if email:
        local, domain = value.split("@", 1)
        return f"{local}{bad}x@{domain}"
    return f"{value[:3]}{bad}{value[3:]}"


def _send(client: httpx.AsyncClient, request: dict[str, Any], user: User, body: Any = None) -> Any:
    """The request as the route table builds it, with the user's token and, when given, this
    body as JSON text with \\u escapes: a lone surrogate cannot be encoded as UTF-8, and this
    is how an attacker sends one."""
    request = dict(request)
    headers = {**request.pop("headers", {}), **user.headers}
    if body is not None:
        request.pop("json")
        request["content"] = json.dumps(body)
        headers["Content-Type"] = "application/json"
    return client.request(**request, headers=headers)


def test_every_text_field_is_attacked() -> None:
    fields = {(e.label, name) for e, name in TEXT_FIELDS}
    assert {
        ("POST /api/{user_id}/tasks", "title"),
        ("POST /api/{user_id}/tasks", "description"),
        ("PUT /api/{user_id}/tasks/{task_id}", "title"),
        ("PUT /api/{user_id}/tasks/{task_id}", "description"),
        ("POST /api/{user_id}/chat", "message"),
        ("POST /api/auth/signup", "email"),
        ("POST /api/auth/signup", "password"),
        ("POST /api/auth/signup", "name"),
        ("POST /api/auth/signin", "email"),
        ("POST /api/auth/signin", "password"),
    } <= fields


@pytest.mark.parametrize(
    ("endpoint", "field"), TEXT_FIELDS, ids=[f"{e.label} {n}" for e, n in TEXT_FIELDS]
)
async def test_a_bad_character_in_any_text_field_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, endpoint: Endpoint, field: str
) -> None:
    owner = await make_owner(client)
    before = await snapshot(app, owner.user.id)
    accounts = await _accounts(app)
    email = endpoint.body_schema is not None and field == "email"
    for name, bad in BAD.items():
        request = request_for(endpoint, path_user=owner.user.id, objects=owner.objects)
        body = {**request["json"], field: _spoiled(str(request["json"][field]), bad, email=email)}
        r = await _send(client, request, owner.user, body)
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.json()["detail"] == f"{field}: {REFUSED}", name
        assert await snapshot(app, owner.user.id) == before, name
        assert await _accounts(app) == accounts, name

    # Control: the same request with clean text is accepted (sign-in: it reaches the password
    # check, and there is no such account).
    request = request_for(endpoint, path_user=owner.user.id, objects=owner.objects)
    r = await _send(client, request, owner.user)
    expected = (401,) if endpoint.path == "/api/auth/signin" else (200, 201)
    assert r.status_code in expected, (endpoint.label, r.status_code, r.text)


async def test_tabs_newlines_and_any_script_are_still_text(client, user) -> None:
    title = "Call Zoë\tre: 東京 🚀"
    description = "line one\nline two\r\nend"
    r = await client.post(
        user.url("/tasks"), json={"title": title, "description": description}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    assert (r.json()["title"], r.json()["description"]) == (title, description)
    # A surrogate pair, escaped in JSON, is one character outside the BMP, not a lone half.
    r = await client.post(
        user.url("/tasks"),
        content='{"title": "rocket \\ud83d\\ude80"}',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["title"] == "rocket 🚀"


@pytest.mark.parametrize("value", ["1", 1.0, True, "abc", [1], {"id": 1}])
async def test_a_conversation_id_must_be_a_json_integer(
    app: FastAPI, client: httpx.AsyncClient, value: Any
) -> None:
    owner = await make_owner(client)
    conversation_id = owner.objects["conversation_id"]
    before = await snapshot(app, owner.user.id)
    r = await client.post(
        owner.user.url("/chat"),
        json={"message": "show my tasks", "conversation_id": value},
        headers=owner.user.headers,
    )
    assert r.status_code == 422, (value, r.text)
    assert r.json()["detail"] == "conversation_id: Input should be a valid integer"
    assert await snapshot(app, owner.user.id) == before
    # Control: the integer is accepted.
    r = await client.post(
        owner.user.url("/chat"),
        json={"message": "show my tasks", "conversation_id": conversation_id},
        headers=owner.user.headers,
    )
    assert r.status_code == 200 and r.json()["conversation_id"] == conversation_id


async def test_the_models_bad_characters_are_stored_as_replacement_characters(
    scripted_app: RunningApp, upstream: FakeUpstream
) -> None:
    """A hostile or confused model writes a NUL in a tool argument and in its reply: the tool
    refuses it, and the turn is stored with U+FFFD in its place on both engines (PostgreSQL
    refused the row: a 500)."""
    user = User()
    upstream.behaviour.script.append(tool_call("add_task", {"title": "milk\u0000"}))
    upstream.behaviour.script.append(text("Added milk\u0000 \u001b[31m."))
    async with scripted_app.client() as client:
        r = await client.post(user.url("/chat"), json={"message": "add milk"}, headers=user.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["response"] == "Added milk\ufffd \ufffd[31m."
        [call] = body["tool_calls"]
        assert call["arguments"] == {"title": "milk\ufffd"}
        assert call["result"] == {"error": f"title: {REFUSED}"}
        messages = await client.get(
            user.url(f"/conversations/{body['conversation_id']}/messages"), headers=user.headers
        )
        stored = messages.json()
        assert [m["content"] for m in stored] == ["add milk", body["response"]]
        assert stored[1]["tool_calls"] == body["tool_calls"]
        tasks = await client.get(user.url("/tasks"), headers=user.headers)
        assert tasks.json() == []

        # Control: a clean turn stores the model's words unchanged.
        upstream.behaviour.script.append(tool_call("add_task", {"title": "milk"}))
        upstream.behaviour.script.append(text("Added milk.\nAnything else?"))
        r = await client.post(user.url("/chat"), json={"message": "add milk"}, headers=user.headers)
        assert r.status_code == 200
        assert r.json()["response"] == "Added milk.\nAnything else?"
        assert r.json()["tool_calls"][0]["result"]["status"] == "created"
