"""Object-level authorization (OWASP API1/API5), generated from the app's own route table.

Every route is found in `app.routes`; its methods, path parameters and a valid body come from the
app's OpenAPI document. A route added later is attacked without editing this file; a route that
takes an id of a kind this file does not know fails loudly until a factory is added below.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from tests.conftest import User, make_settings
from tests.security.support import snapshot
from todochat.main import create_app

# The app is built (not started) only to read its routes and its OpenAPI document.
_APP = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
_OPENAPI = _APP.openapi()
# Routes anyone may call: the only ones allowed to answer without a token.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/signin"),
}
# Served by FastAPI itself, switched off in production (see test_hardening).
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Parameter names that point at a user's object, and the owner's objects to aim them at.
OBJECT_KINDS = ("task_id", "conversation_id")
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.operation.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return _resolve(media["schema"]) if media else None

    @property
    def object_params(self) -> list[str]:
        """Every path parameter and body field that names an object, besides the user."""
        names = [p for p in self.path_params if p != "user_id"]
        body = self.body_schema or {}
        names += [p for p in body.get("properties", {}) if p.endswith("_id") and p != "user_id"]
        return names


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = _OPENAPI["components"]["schemas"][name]
    return schema


def _endpoints() -> list[Endpoint]:
    found = []
    for context in iter_route_contexts(_APP.routes):
        route = context.original_route
        path = context.path_format or ""
        if isinstance(route, APIRoute):
            for method in sorted(context.methods or ()):
                operation = _OPENAPI["paths"][path][method.lower()]
                found.append(Endpoint(method, path, operation))
        elif isinstance(route, Mount):
            # A mounted app (an MCP endpoint, say) is not in the OpenAPI document: probe it bare.
            found.append(Endpoint("POST", path, {}))
        elif path not in DOCS:
            found.extend(Endpoint(m, path, {}) for m in sorted(context.methods or ()))
    return found


ALL = _endpoints()
PROTECTED = [e for e in ALL if (e.method, e.path) not in PUBLIC]
USER_ROUTES = [e for e in ALL if "{user_id}" in e.path]
OBJECT_ROUTES = [e for e in USER_ROUTES if e.object_params]
COLLECTION_READS = [e for e in USER_ROUTES if e.method == "GET" and not e.object_params]


def _ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.label for e in endpoints]


def example(schema: dict[str, Any], *, name: str = "", objects: dict[str, int]) -> Any:
    """A valid value for `schema`: every property filled, ids aimed at `objects`."""
    schema = _resolve(schema)
    if name in objects:
        return objects[name]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if _resolve(s).get("type") != "null"]
        return example(options[0], name=name, objects=objects)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            key: example(sub, name=key, objects=objects)
            for key, sub in schema.get("properties", {}).items()
        }
    if kind == "string":
        if schema.get("format") == "email":
            return f"probe-{uuid.uuid4().hex[:8]}@example.com"
        return f"probe {name} {uuid.uuid4().hex[:6]}"[: schema.get("maxLength", 200)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    raise AssertionError(f"no example for schema {schema}")


@dataclass
class Owner:
    """A user with one object of every kind: the victim of the attacks below."""

    user: User
    objects: dict[str, int]
    marker: str


async def make_owner(client: httpx.AsyncClient) -> Owner:
    user = User()
    marker = f"secret-{uuid.uuid4().hex[:10]}"
    r = await client.post(user.url("/tasks"), json={"title": marker}, headers=user.headers)
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    r = await client.post(
        user.url("/chat"), json={"message": f"add {marker} chat"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    objects = {"task_id": task_id, "conversation_id": r.json()["conversation_id"]}
    assert set(objects) == set(OBJECT_KINDS)
    return Owner(user, objects, marker)


def request_for(endpoint: Endpoint, *, path_user: str, objects: dict[str, int]) -> dict[str, Any]:
    unknown = [p for p in endpoint.object_params if p not in objects]
    if unknown:
        pytest.fail(
            f"{endpoint.label} takes {unknown}: add a factory for that kind of object to "
            "make_owner() so that cross-user access to it is attacked too"
        )
    path = endpoint.path.replace("{user_id}", path_user)
    for name, value in objects.items():
        path = path.replace("{" + name + "}", str(value))
    request: dict[str, Any] = {"method": endpoint.method, "url": path}
    if endpoint.body_schema is not None:
        request["json"] = example(endpoint.body_schema, objects=objects)
    return request


def test_the_route_table_is_read() -> None:
    # If discovery broke, every parametrised attack below would silently vanish.
    labels = set(_ids(USER_ROUTES))
    assert len(USER_ROUTES) >= 9
    for expected in (
        "GET /api/{user_id}/tasks",
        "POST /api/{user_id}/tasks",
        "PUT /api/{user_id}/tasks/{task_id}",
        "DELETE /api/{user_id}/tasks/{task_id}",
        "PATCH /api/{user_id}/tasks/{task_id}/complete",
        "POST /api/{user_id}/chat",
        "GET /api/{user_id}/conversations/{conversation_id}/messages",
    ):
        assert expected in labels
    assert "POST /api/{user_id}/chat" in _ids(OBJECT_ROUTES)  # conversation_id in the body
    assert {f"{m} {p}" for m, p in PUBLIC} <= set(_ids(ALL))
    assert len(PROTECTED) == len(ALL) - len(PUBLIC)


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_ids(PROTECTED))
async def test_every_route_not_public_by_name_refuses_a_missing_or_bad_token(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    owner = User()
    request = request_for(endpoint, path_user=owner.id, objects={k: 1 for k in OBJECT_KINDS})
    r = await client.request(**request)
    assert r.status_code == 401, (endpoint.label, r.status_code, r.text)
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.request(**request, headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401


@pytest.mark.parametrize("endpoint", USER_ROUTES, ids=_ids(USER_ROUTES))
async def test_another_users_token_on_my_path_is_403_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    owner = await make_owner(client)
    attacker = User()
    request = request_for(endpoint, path_user=owner.user.id, objects=owner.objects)
    before = await snapshot(app, owner.user.id, attacker.id)

    r = await client.request(**request, headers=attacker.headers)
    assert r.status_code == 403, (endpoint.label, r.text)
    assert r.json() == {"detail": "You can only access your own resources"}
    assert owner.marker not in r.text
    assert await snapshot(app, owner.user.id, attacker.id) == before

    # The same request with the owner's token is accepted: the 403 was the ownership check.
    r = await client.request(**request, headers=owner.user.headers)
    assert 200 <= r.status_code < 300, (endpoint.label, r.status_code, r.text)


@pytest.mark.parametrize("endpoint", OBJECT_ROUTES, ids=_ids(OBJECT_ROUTES))
async def test_my_object_ids_on_another_users_path_are_404_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    owner = await make_owner(client)
    attacker = User()
    # The attacker owns objects too, so "404" cannot come from having none at all.
    await make_owner_objects_for(client, attacker)
    before = await snapshot(app, owner.user.id, attacker.id)

    for name in endpoint.object_params:
        # Aim one parameter at the owner's object at a time, the others at the attacker's own.
        attacker_objects = await attacker_object_ids(client, attacker)
        objects = {**attacker_objects, name: owner.objects[name]}
        request = request_for(endpoint, path_user=attacker.id, objects=objects)
        r = await client.request(**request, headers=attacker.headers)
        assert r.status_code == 404, (endpoint.label, name, r.status_code, r.text)
        assert r.json()["detail"].endswith("not found")
        assert owner.marker not in r.text
        assert await snapshot(app, owner.user.id, attacker.id) == before

    # Control: the owner reaches the same objects on the owner's own path.
    request = request_for(endpoint, path_user=owner.user.id, objects=owner.objects)
    r = await client.request(**request, headers=owner.user.headers)
    assert 200 <= r.status_code < 300, (endpoint.label, r.status_code, r.text)


async def make_owner_objects_for(client: httpx.AsyncClient, user: User) -> None:
    r = await client.post(user.url("/tasks"), json={"title": "my own"}, headers=user.headers)
    assert r.status_code == 201
    r = await client.post(user.url("/chat"), json={"message": "hello"}, headers=user.headers)
    assert r.status_code == 200


async def attacker_object_ids(client: httpx.AsyncClient, user: User) -> dict[str, int]:
    tasks = (await client.get(user.url("/tasks"), headers=user.headers)).json()
    conversations = (await client.get(user.url("/conversations"), headers=user.headers)).json()
    return {"task_id": tasks[0]["id"], "conversation_id": conversations[0]["id"]}


@pytest.mark.parametrize("endpoint", COLLECTION_READS, ids=_ids(COLLECTION_READS))
async def test_my_own_listings_never_show_another_users_objects(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    reader = User()
    await make_owner_objects_for(client, reader)
    request = request_for(endpoint, path_user=reader.id, objects={})
    first = await client.request(**request, headers=reader.headers)
    assert first.status_code == 200 and first.json(), "the reader's own objects are listed"

    # Another user's activity changes nothing in what the reader sees.
    owner = await make_owner(client)
    again = await client.request(**request, headers=reader.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert owner.marker not in again.text


@pytest.mark.parametrize(
    "variant",
    [
        lambda uid: uid.upper(),
        lambda uid: uid + " ",
        lambda uid: " " + uid,
        lambda uid: uid + "%00",
        lambda uid: uid.replace("-", "%2D"),
        lambda uid: uid[:-1],
        lambda uid: uid + "x",
    ],
    ids=["uppercase", "trailing-space", "leading-space", "nul", "encoded", "prefix", "longer"],
)
async def test_a_path_that_only_looks_like_mine_is_not_mine(client, variant) -> None:
    owner = User()
    r = await client.post(owner.url("/tasks"), json={"title": "mine"}, headers=owner.headers)
    assert r.status_code == 201
    other_path = variant(owner.id)
    r = await client.get(f"/api/{other_path}/tasks", headers=owner.headers)
    if other_path.replace("%2D", "-") == owner.id:
        # Percent-encoding is decoded before routing: the same user, not a bypass.
        assert r.status_code == 200
    else:
        assert r.status_code in (403, 422), r.text
