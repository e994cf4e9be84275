"""The app's own route table and OpenAPI document, read once, for the generated attacks.

A route added later is found here without editing any test; a route that takes an id of a kind
not known here fails the tests loudly until a factory is added to `make_owner`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from tests.conftest import User, make_settings
from todochat.main import create_app

# The app is built (not started) only to read its routes and its OpenAPI document.
APP = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
OPENAPI = APP.openapi()
# Routes anyone may call: the only ones allowed to answer without a token.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/signin"),
    # OAuth protected-resource metadata: MCP clients read it before they have a token.
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
    ("GET", "/.well-known/oauth-protected-resource"),
    # The authorization server of /mcp (stand-alone set-up): the endpoints a client uses to get
    # a token cannot ask for one. Their attacks are in tests/oauth/test_oauth_server.py.
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("POST", "/token"),
    ("POST", "/register"),
    ("POST", "/revoke"),
    ("GET", "/oauth/sign-in"),
    ("POST", "/oauth/sign-in"),
    ("GET", "/oauth/sign-in.css"),
    # Prometheus scrapes without a token; operators restrict it by network or METRICS_ENABLED
    # (decision D28). Its labels carry no user data (test_observability).
    ("GET", "/metrics"),
}
# Pages for a browser and their files, no data: the API docs and the playground, switched off
# in production (see test_hardening). The playground's data comes from the routes attacked here.
DOCS = {
    "/openapi.json",
    "/docs",
    "/docs/swagger-ui-bundle.js",
    "/docs/swagger-ui.css",
    "/docs/favicon.png",
    "/redoc",
    "/playground",
    "/playground/playground.js",
    "/playground/playground.css",
}
# Parameter names that point at a user's object, and the owner's objects to aim them at.
OBJECT_KINDS = ("task_id", "conversation_id")
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation: dict[str, Any]
    route: APIRoute | None = None

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
        schema = OPENAPI["components"]["schemas"][name]
    return schema


def _endpoints() -> list[Endpoint]:
    found = []
    for context in iter_route_contexts(APP.routes):
        route = context.original_route
        path = context.path_format or ""
        if path in DOCS:
            continue
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(context.methods or ()):
                operation = OPENAPI["paths"][path][method.lower()]
                found.append(Endpoint(method, path, operation, route))
        elif isinstance(route, Mount) or not context.methods:
            # A mounted app or an any-method endpoint (/mcp) is not in the OpenAPI document:
            # it is probed with a JSON POST.
            found.append(Endpoint("POST", path, {}))
        else:
            # Plain routes, and API routes left out of the document (/chatkit speaks the
            # ChatKit protocol): probed by method, with a JSON POST.
            methods = sorted(set(context.methods) - {"HEAD", "OPTIONS"})
            found.extend(Endpoint(m, path, {}) for m in methods)
    return found


ALL = _endpoints()
PROTECTED = [e for e in ALL if (e.method, e.path) not in PUBLIC]
USER_ROUTES = [e for e in ALL if "{user_id}" in e.path]
OBJECT_ROUTES = [e for e in USER_ROUTES if e.object_params]
COLLECTION_READS = [e for e in USER_ROUTES if e.method == "GET" and not e.object_params]


def ids(endpoints: list[Endpoint]) -> list[str]:
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
    # 127.0.0.1: the host the MCP endpoint accepts by default (it refuses foreign Host headers).
    request: dict[str, Any] = {"method": endpoint.method, "url": f"http://127.0.0.1{path}"}
    if endpoint.body_schema is not None:
        request["json"] = example(endpoint.body_schema, objects=objects)
    elif endpoint.route is None and endpoint.method == "POST":
        request["json"] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        request["headers"] = {"Accept": "application/json, text/event-stream"}
    return request
