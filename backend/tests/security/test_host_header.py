"""The Host header is the client's word (OWASP API8): no answer builds a URL from it. A stray
trailing slash was a 307 to `http://<Host>/…`, which a client follows with the same body (a
sign-in's password included); the MCP 401 challenge named the metadata URL at any Host."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import User, make_settings, start_app
from tests.security.routes import ALL, Endpoint, ids, make_owner, request_for

EVIL = "evil.example"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def _assert_no_redirect(r: httpx.Response) -> None:
    assert r.status_code == 404, (r.status_code, r.headers.get("location"))
    assert "location" not in r.headers
    assert r.json() == {"detail": "Not Found"}
    assert EVIL not in r.text


async def test_a_trailing_slash_on_sign_in_is_a_404_not_a_redirect_to_the_host(client) -> None:
    body = {"email": "ada@example.com", "password": "correct horse battery staple"}
    r = await client.post("/api/auth/signin/", json=body, headers={"Host": EVIL})
    _assert_no_redirect(r)
    # Control: the route itself answers (no such account), whatever the Host.
    r = await client.post("/api/auth/signin", json=body, headers={"Host": EVIL})
    assert r.status_code == 401


@pytest.mark.parametrize("endpoint", ALL, ids=ids(ALL))
async def test_no_route_redirects_a_trailing_slash(client, endpoint: Endpoint) -> None:
    owner = await make_owner(client)
    request = request_for(endpoint, path_user=owner.user.id, objects=owner.objects)
    url = httpx.URL(request.pop("url"))
    headers = {**request.pop("headers", {}), **owner.user.headers, "Host": EVIL}
    r = await client.request(
        url=str(url.copy_with(path=url.path + "/")), **request, headers=headers
    )
    _assert_no_redirect(r)


async def test_the_mcp_challenge_names_no_host_nobody_configured(client) -> None:
    for authorization in ({}, {"Authorization": "Bearer forged"}):
        r = await client.post(
            "/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, **authorization, "Host": EVIL}
        )
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        assert EVIL not in challenge and "resource_metadata" not in challenge
    # Control: at a name of MCP_ALLOWED_HOSTS the challenge points at the metadata.
    r = await client.post(
        "/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, "Host": "127.0.0.1:8000"}
    )
    assert r.status_code == 401
    metadata = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"
    assert r.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata}"'


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"mcp_allowed_hosts": ["*"]}, "Bearer"),
        (
            {"public_url": "https://todo.example.com"},
            'Bearer resource_metadata="https://todo.example.com'
            '/.well-known/oauth-protected-resource/mcp"',
        ),
    ],
    ids=["host-check-off", "public-url"],
)
async def test_the_mcp_challenge_follows_configuration_not_the_host(
    database_url, overrides, expected
) -> None:
    running = await start_app(make_settings(database_url, **overrides))
    try:
        async with running.client() as client:
            r = await client.post("/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, "Host": EVIL})
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == expected
            # Control: a valid token is let in.
            user = User()
            r = await client.post(
                "/mcp",
                json=LIST_TOOLS,
                headers={**MCP_HEADERS, **user.headers, "Host": "todo.example.com"},
            )
            assert r.status_code == 200, r.text
    finally:
        await running.stop()
