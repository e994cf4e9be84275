"""The task tools over streamable HTTP at /mcp: the official MCP client against the service run
by uvicorn on 127.0.0.1, on both engines. Effects are checked through the REST API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jsonschema
import pytest

from mcp import MCPError
from tests.conftest import User, make_settings, start_app, token_for
from tests.mcp_support import (
    LiveServer,
    assert_tool_schemas,
    data,
    error_text,
    http_client,
)
from todochat.tasks.schemas import PAGE_DEFAULT

# A JSON-RPC request as any streamable-HTTP client sends it (stateless: no session needed).
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def _rest_tasks(rest: httpx.AsyncClient, user: User) -> dict[int, dict[str, Any]]:
    r = await rest.get(user.url("/tasks"), headers=user.headers)
    assert r.status_code == 200, r.text
    return {t["id"]: t for t in r.json()}


async def test_tool_list_names_the_five_tools_and_no_user_id(live: LiveServer, user: User):
    async with http_client(live.mcp_url, user.token) as client:
        tools = (await client.list_tools()).tools
    assert_tool_schemas(tools)


async def test_each_tool_acts_on_the_token_users_tasks(live, rest, user: User) -> None:
    async with http_client(live.mcp_url, user.token) as client:
        added = data(
            await client.call_tool("add_task", {"title": "  Buy milk ", "description": "2l"})
        )
        assert added["status"] == "created" and added["title"] == "Buy milk"
        task_id = added["task_id"]
        stored = (await _rest_tasks(rest, user))[task_id]
        assert stored["user_id"] == user.id
        assert (stored["title"], stored["description"], stored["completed"]) == (
            "Buy milk",
            "2l",
            False,
        )

        updated = data(
            await client.call_tool(
                "update_task",
                {"task_id": task_id, "title": "Buy oat milk", "description": "oat, 2l"},
            )
        )
        assert updated == {"task_id": task_id, "status": "updated", "title": "Buy oat milk"}
        stored = (await _rest_tasks(rest, user))[task_id]
        assert (stored["title"], stored["description"]) == ("Buy oat milk", "oat, 2l")

        listed = data(await client.call_tool("list_tasks", {"status": "pending"}))
        assert [t["id"] for t in listed] == [task_id]
        assert data(await client.call_tool("list_tasks", {"status": "completed"})) == []

        done = data(await client.call_tool("complete_task", {"task_id": task_id}))
        assert done == {"task_id": task_id, "status": "completed", "title": "Buy oat milk"}
        assert (await _rest_tasks(rest, user))[task_id]["completed"] is True
        listed = data(await client.call_tool("list_tasks", {"status": "completed"}))
        assert listed == [
            {"id": task_id, "title": "Buy oat milk", "description": "oat, 2l", "completed": True}
        ]

        deleted = data(await client.call_tool("delete_task", {"task_id": task_id}))
        assert deleted == {"task_id": task_id, "status": "deleted", "title": "Buy oat milk"}
    r = await rest.get(user.url(f"/tasks/{task_id}"), headers=user.headers)
    assert r.status_code == 404


async def test_two_users_connected_at_once_see_only_their_own(live, rest, new_user) -> None:
    alice, bob = new_user(), new_user()
    async with (
        http_client(live.mcp_url, alice.token) as a,
        http_client(live.mcp_url, bob.token) as b,
    ):
        added = await asyncio.gather(
            *(a.call_tool("add_task", {"title": f"alice {i}"}) for i in range(3)),
            *(b.call_tool("add_task", {"title": f"bob {i}"}) for i in range(3)),
        )
        assert all(not r.is_error for r in added)
        seen_a, seen_b = await asyncio.gather(a.call_tool("list_tasks"), b.call_tool("list_tasks"))
    assert sorted(t["title"] for t in data(seen_a)) == ["alice 0", "alice 1", "alice 2"]
    assert sorted(t["title"] for t in data(seen_b)) == ["bob 0", "bob 1", "bob 2"]
    assert {t["title"] for t in (await _rest_tasks(rest, bob)).values()} == {
        "bob 0",
        "bob 1",
        "bob 2",
    }


async def test_another_users_task_is_not_found_and_stays_unchanged(live, rest, new_user):
    owner, intruder = new_user(), new_user()
    async with http_client(live.mcp_url, owner.token) as client:
        task_id = data(await client.call_tool("add_task", {"title": "Private"}))["task_id"]
    before = (await _rest_tasks(rest, owner))[task_id]
    async with http_client(live.mcp_url, intruder.token) as client:
        for name, args in (
            ("complete_task", {"task_id": task_id}),
            ("update_task", {"task_id": task_id, "title": "Hijacked"}),
            ("delete_task", {"task_id": task_id}),
        ):
            result = await client.call_tool(name, args)
            assert error_text(result) == f"Task {task_id} not found", name
            assert result.structured_content is None, name
        assert data(await client.call_tool("list_tasks")) == []
    assert (await _rest_tasks(rest, owner))[task_id] == before


async def test_meta_and_user_id_argument_cannot_change_the_user(live, rest, new_user) -> None:
    me, victim = new_user(), new_user()
    async with http_client(live.mcp_url, me.token) as client:
        # `_meta` is how the in-process agent names its user; over HTTP it is client input.
        sneaky = await client.call_tool(
            "add_task", {"title": "Mine"}, meta={"todochat/user_id": victim.id}
        )
        assert data(sneaky)["status"] == "created"
        refused = await client.call_tool("list_tasks", {"user_id": victim.id})
        assert "user_id does not match" in error_text(refused)
        own = await client.call_tool("list_tasks", {"user_id": me.id})
        assert [t["title"] for t in data(own)] == ["Mine"]
    assert [t["title"] for t in (await _rest_tasks(rest, me)).values()] == ["Mine"]
    assert await _rest_tasks(rest, victim) == {}


async def test_no_token_is_a_json_401_pointing_at_the_metadata(live, rest) -> None:
    r = await rest.post("/mcp", json=LIST_TOOLS, headers=MCP_HEADERS)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    metadata_url = f"{live.base}/.well-known/oauth-protected-resource/mcp"
    assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url}"'

    metadata = await rest.get(metadata_url)
    assert metadata.status_code == 200
    body = metadata.json()
    assert body["resource"] == live.mcp_url
    assert body["authorization_servers"] == [live.base]
    assert body["bearer_methods_supported"] == ["header"]
    root = await rest.get("/.well-known/oauth-protected-resource")
    assert root.json() == body

    with pytest.raises(ExceptionGroup) as failure:
        async with http_client(live.mcp_url, None) as client:
            await client.list_tools()
    assert failure.group_contains(MCPError, depth=None)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        token_for("someone", ttl=-60),
        token_for("someone", secret="another-secret-that-is-long-enough-0123456789"),
    ],
    ids=["garbage", "expired", "foreign-secret"],
)
async def test_bad_token_is_a_json_401_and_changes_nothing(live, rest, user, token) -> None:
    async with http_client(live.mcp_url, user.token) as client:
        data(await client.call_tool("add_task", {"title": "Keep me"}))
    before = await _rest_tasks(rest, user)

    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "delete_task", "arguments": {"task_id": next(iter(before))}}
    r = await rest.post(
        "/mcp", json=call, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid or expired token"}
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert f'resource_metadata="{live.base}/.well-known/oauth-protected-resource/mcp"' in challenge

    with pytest.raises(ExceptionGroup) as failure:
        async with http_client(live.mcp_url, token) as client:
            await client.call_tool("delete_task", {"task_id": next(iter(before))})
    assert failure.group_contains(MCPError, depth=None)
    assert await _rest_tasks(rest, user) == before


async def test_foreign_host_is_refused_with_json(live, rest, user: User) -> None:
    headers = {**MCP_HEADERS, **user.headers, "Host": "attacker.example"}
    r = await rest.post("/mcp", json=LIST_TOOLS, headers=headers)
    assert r.status_code == 421
    assert "MCP_ALLOWED_HOSTS" in r.json()["detail"]
    headers = {**MCP_HEADERS, **user.headers, "Origin": "http://attacker.example"}
    r = await rest.post("/mcp", json=LIST_TOOLS, headers=headers)
    assert r.status_code == 403
    assert "Origin" in r.json()["detail"]


async def test_the_apps_middlewares_wrap_mcp_answers(live, rest, user: User) -> None:
    headers = {**MCP_HEADERS, **user.headers, "X-Request-ID": "mcp-req-1"}
    r = await rest.post("/mcp", json=LIST_TOOLS, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert {t["name"] for t in r.json()["result"]["tools"]} >= {"add_task", "list_tasks"}
    assert r.headers["x-request-id"] == "mcp-req-1"
    assert r.headers["x-content-type-options"] == "nosniff"

    too_big = {**LIST_TOOLS, "params": {"padding": "x" * 1_100_000}}
    r = await rest.post("/mcp", json=too_big, headers={**MCP_HEADERS, **user.headers})
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]

    schema = (await rest.get("/openapi.json")).json()
    assert not any(path.startswith(("/mcp", "/.well-known")) for path in schema["paths"])
    assert "/mcp" in schema["info"]["description"]


async def test_configured_host_names_and_public_url(database_url: str, user: User) -> None:
    settings = make_settings(
        database_url,
        mcp_allowed_hosts=["todo.internal:8443"],
        public_url="https://todo.example.com",
    )
    running = await start_app(settings)

    def client_for(base: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=running.app), base_url=base)

    try:
        for base, expected in (
            ("http://todo.example.com", 200),  # PUBLIC_URL's host is always allowed
            ("http://todo.internal:8443", 200),
            ("http://todo.internal:9999", 421),
            ("http://127.0.0.1:8000", 421),  # the local defaults are replaced, not extended
        ):
            async with client_for(base) as client:
                headers = {**MCP_HEADERS, **user.headers}
                r = await client.post("/mcp", json=LIST_TOOLS, headers=headers)
                assert r.status_code == expected, base

        async with client_for("http://todo.internal:8443") as client:
            meta = await client.get("/.well-known/oauth-protected-resource/mcp")
            assert meta.json()["resource"] == "https://todo.example.com/mcp"
            r = await client.post("/mcp", json=LIST_TOOLS, headers=MCP_HEADERS)
        expected_metadata = "https://todo.example.com/.well-known/oauth-protected-resource/mcp"
        assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{expected_metadata}"'
    finally:
        await running.stop()


async def test_stateless_endpoint_answers_get_and_delete_with_405(live, rest, user) -> None:
    for method in ("GET", "DELETE"):
        headers = {**user.headers, "Accept": "text/event-stream"}
        r = await asyncio.wait_for(rest.request(method, "/mcp", headers=headers), timeout=10)
        assert r.status_code == 405, method
        assert r.headers["allow"] == "POST"
        assert "POST" in r.json()["detail"]
    r = await rest.get("/mcp")
    assert r.status_code == 401  # who you are comes first, so clients learn to authenticate


async def test_with_the_host_check_off_metadata_follows_the_host(database_url: str) -> None:
    running = await start_app(make_settings(database_url, mcp_allowed_hosts=["*"]))
    transport = httpx.ASGITransport(app=running.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://any.example") as c:
            r = await c.get("/.well-known/oauth-protected-resource/mcp")
            assert r.json()["resource"] == "http://any.example/mcp"
            r = await c.get("/.well-known/oauth-protected-resource/mcp", headers={"Host": "a b"})
            assert r.status_code == 400
            assert r.json() == {"detail": "Invalid Host header"}
    finally:
        await running.stop()


async def test_without_a_token_the_answer_is_401_whatever_else_is_wrong(client) -> None:
    """Authentication comes before the transport's own checks (content type, host)."""
    for headers in (
        {"Content-Type": "text/plain"},
        {"Host": "evil.example", "Content-Type": "x/y"},
    ):
        r = await client.post("/mcp", content=b"not json-rpc", headers=headers)
        assert r.status_code == 401, headers
        assert r.json() == {"detail": "Not authenticated"}
        # These hosts are not ours: the challenge names no metadata URL built from them.
        assert r.headers["www-authenticate"] == "Bearer"


async def test_every_result_matches_its_tools_output_schema(live, user: User) -> None:
    """Checked here with jsonschema as well as by the client: a cut list included."""
    async with http_client(live.mcp_url, user.token) as client:
        schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
        results: list[tuple[str, Any]] = []

        async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            results.append((name, result.structured_content))
            return result.structured_content

        # One more than list_tasks shows, so that the answer is cut.
        for i in range(PAGE_DEFAULT + 1):
            task_id = (await call("add_task", {"title": f"task {i}"}))["task_id"]
        await call("update_task", {"task_id": task_id, "description": ""})
        await call("complete_task", {"task_id": task_id})
        cut = await call("list_tasks", {"status": "all"})
        assert cut["more"] is True and len(cut["result"]) == PAGE_DEFAULT
        assert set(await call("list_tasks", {"status": "completed"})) == {"result"}
        await call("delete_task", {"task_id": task_id})
    for name, structured in results:
        schema = schemas[name]
        assert schema is not None
        jsonschema.Draft202012Validator(schema).validate(structured)
    # Control: the schemas do reject what does not match them.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schemas["list_tasks"]).validate({"tasks": []})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schemas["add_task"]).validate(
            {"task_id": 1, "status": "deleted", "title": "x"}
        )


async def test_nothing_to_change_and_lost_tasks_are_tool_errors(live, user: User) -> None:
    async with http_client(live.mcp_url, user.token) as client:
        task_id = data(await client.call_tool("add_task", {"title": "Stay"}))["task_id"]
        nothing = await client.call_tool("update_task", {"task_id": task_id})
        assert error_text(nothing) == "Nothing to change: give a new title or description"
        for name in ("complete_task", "delete_task"):
            lost = await client.call_tool(name, {"task_id": 999_999})
            assert error_text(lost) == "Task 999999 not found"
            assert lost.structured_content is None
        assert [t["title"] for t in data(await client.call_tool("list_tasks"))] == ["Stay"]


@pytest.mark.parametrize(
    ("overrides", "documented"),
    [
        ({}, True),  # development: /docs is served, so the metadata links it
        ({"app_env": "production", "better_auth_secret": "p" * 40}, False),
        ({"app_env": "production", "better_auth_secret": "p" * 40, "docs_enabled": True}, True),
        ({"docs_enabled": False}, False),
    ],
    ids=["dev", "production", "production-docs-on", "dev-docs-off"],
)
async def test_metadata_links_the_docs_exactly_when_they_are_served(
    database_url: str, overrides: dict[str, Any], documented: bool
) -> None:
    running = await start_app(make_settings(database_url, **overrides))
    transport = httpx.ASGITransport(app=running.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            body = (await c.get("/.well-known/oauth-protected-resource/mcp")).json()
            docs = await c.get("/docs")
    finally:
        await running.stop()
    assert (docs.status_code == 200) is documented
    if documented:
        assert body["resource_documentation"] == "http://127.0.0.1/docs"
    else:
        assert "resource_documentation" not in body
