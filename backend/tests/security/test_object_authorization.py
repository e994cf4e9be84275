"""Object-level authorization (OWASP API1/API5), generated from the app's own route table.

Every route is found in `app.routes` (tests/security/routes.py); its methods, path parameters and
a valid body come from the app's OpenAPI document. A route added later is attacked without
editing this file.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import User
from tests.security.routes import (
    ALL,
    COLLECTION_READS,
    OBJECT_KINDS,
    OBJECT_ROUTES,
    PROTECTED,
    PUBLIC,
    USER_ROUTES,
    Endpoint,
    ids,
    make_owner,
    request_for,
)
from tests.security.support import snapshot


def test_the_route_table_is_read() -> None:
    # If discovery broke, every parametrised attack below would silently vanish.
    labels = set(ids(USER_ROUTES))
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
    assert "POST /api/{user_id}/chat" in ids(OBJECT_ROUTES)  # conversation_id in the body
    assert {f"{m} {p}" for m, p in PUBLIC} <= set(ids(ALL))
    assert len(PROTECTED) == len(ALL) - len(PUBLIC)


@pytest.mark.parametrize("endpoint", PROTECTED, ids=ids(PROTECTED))
async def test_every_route_not_public_by_name_refuses_a_missing_or_bad_token(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    owner = User()
    request = request_for(endpoint, path_user=owner.id, objects={k: 1 for k in OBJECT_KINDS})
    headers = request.pop("headers", {})
    r = await client.request(**request, headers=headers)
    assert r.status_code == 401, (endpoint.label, r.status_code, r.text)
    assert r.headers["www-authenticate"].startswith("Bearer")
    bad = {**headers, "Authorization": "Bearer not.a.token"}
    r = await client.request(**request, headers=bad)
    assert r.status_code == 401


@pytest.mark.parametrize("endpoint", USER_ROUTES, ids=ids(USER_ROUTES))
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


@pytest.mark.parametrize("endpoint", OBJECT_ROUTES, ids=ids(OBJECT_ROUTES))
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
        attacker_objects = await attacker_objectids(client, attacker)
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


async def attacker_objectids(client: httpx.AsyncClient, user: User) -> dict[str, int]:
    tasks = (await client.get(user.url("/tasks"), headers=user.headers)).json()
    conversations = (await client.get(user.url("/conversations"), headers=user.headers)).json()
    return {"task_id": tasks[0]["id"], "conversation_id": conversations[0]["id"]}


@pytest.mark.parametrize("endpoint", COLLECTION_READS, ids=ids(COLLECTION_READS))
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


# --- the same tools over /mcp, as outside MCP clients reach them ------------------------------


async def mcp_call(
    client: httpx.AsyncClient, user: User, tool: str, arguments: dict[str, object]
) -> dict[str, object]:
    r = await client.post(
        "http://127.0.0.1/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        },
        headers={**user.headers, "Accept": "application/json, text/event-stream"},
    )
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()["result"]
    return result


@pytest.mark.parametrize(
    ("tool", "extra"),
    [
        ("complete_task", {}),
        ("delete_task", {}),
        ("update_task", {"title": "pwned"}),
        ("complete_task", {"user_id": "OWNER"}),
        ("delete_task", {"user_id": "OWNER"}),
        ("update_task", {"title": "pwned", "user_id": "OWNER"}),
    ],
    ids=["complete", "delete", "update", "complete-as", "delete-as", "update-as"],
)
async def test_over_mcp_my_task_ids_are_not_found_for_another_user(
    app: FastAPI, client: httpx.AsyncClient, tool: str, extra: dict[str, str]
) -> None:
    owner = await make_owner(client)
    attacker = User()
    before = await snapshot(app, owner.user.id, attacker.id)
    arguments = {"task_id": owner.objects["task_id"], **extra}
    if arguments.get("user_id") == "OWNER":
        arguments["user_id"] = owner.user.id
    result = await mcp_call(client, attacker, tool, arguments)
    assert result.get("isError") or "not found" in str(result), result
    assert owner.marker not in str(result)
    assert await snapshot(app, owner.user.id, attacker.id) == before
    listed = await mcp_call(client, attacker, "list_tasks", {"status": "all"})
    assert owner.marker not in str(listed)
    # Control: the owner's own token reaches the task over the same transport.
    result = await mcp_call(
        client,
        owner.user,
        tool,
        {"task_id": owner.objects["task_id"], **{k: v for k, v in extra.items() if k != "user_id"}},
    )
    assert not result.get("isError") and "not found" not in str(result), result
