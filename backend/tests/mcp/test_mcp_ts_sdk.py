"""The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, from the committed lock file)
against the app served on 127.0.0.1, on both engines: tool results as the spec has them, and
the SDK's own OAuth client logging in from the URL alone (stand-alone set-up)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import User, make_settings
from tests.mcp_support import LiveServer
from tests.npm import require_npm_packages
from tests.oauth.stub_issuer import StubIssuer

TS_SDK_DIR = Path(__file__).parent / "ts_sdk"
REDIRECT_URI = "http://127.0.0.1:33418/callback"


@pytest.fixture(scope="session")
def ts_sdk() -> Path:
    require_npm_packages(TS_SDK_DIR)
    return TS_SDK_DIR


async def run_client(url: str, scenario: str, **options: Any) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node",
        "client.mjs",
        url,
        scenario,
        json.dumps(options),
        cwd=TS_SDK_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    assert "error" not in result, result["error"]
    return result


async def sign_up(rest: httpx.AsyncClient) -> tuple[str, str, str]:
    email, password = f"ts-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery"
    r = await rest.post("/api/auth/signup", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return email, password, r.json()["user"]["id"]


def _text(result: dict[str, Any]) -> str:
    return "".join(part["text"] for part in result["content"])


def assert_results_follow_the_spec(calls: list[dict[str, Any]], tools: list[dict[str, Any]]):
    by_name = {t["name"]: t for t in tools}
    assert all(by_name[name].get("outputSchema") for name in by_name)
    title = by_name["add_task"]["inputSchema"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (1, 200)
    added, listed, updated, completed, lost, long_title, empty, zero = (c["result"] for c in calls)
    for ok in (added, listed, updated, completed):
        assert not ok.get("isError"), ok
        assert ok["structuredContent"], ok
    assert added["structuredContent"]["status"] == "created"
    assert json.loads(_text(added)) == added["structuredContent"]
    assert [t["id"] for t in listed["structuredContent"]["result"]] == [
        added["structuredContent"]["task_id"]
    ]
    assert completed["structuredContent"]["status"] == "completed"
    for failed, words in (
        (lost, "Task 999999 not found"),
        (long_title, "title: String should have at most 200 characters"),
        (empty, "title: String should have at least 1 character"),
        (zero, "task_id: Input should be greater than or equal to 1"),
    ):
        assert failed["isError"] is True, failed
        assert _text(failed) == words
        assert "structuredContent" not in failed


async def test_ts_sdk_with_a_bearer_token_sees_spec_results(ts_sdk, live: LiveServer, rest):
    user = User()
    seen = await run_client(live.mcp_url, "bearer", token=user.token)
    assert_results_follow_the_spec(seen["calls"], seen["tools"])
    r = await rest.get(user.url("/tasks"), headers=user.headers)
    assert [(t["title"], t["completed"]) for t in r.json()] == [("From TypeScript", True)]


@pytest.mark.parametrize("auth_method", ["client_secret_post", "none"])
async def test_ts_sdk_logs_in_by_itself_from_the_url_alone(
    ts_sdk, live: LiveServer, rest, auth_method: str
) -> None:
    email, password, user_id = await sign_up(rest)
    seen = await run_client(
        live.mcp_url,
        "oauth",
        email=email,
        password=password,
        redirect_uri=REDIRECT_URI,
        auth_method=auth_method,
        title=f"OAuth {auth_method}",
    )
    # Registration, then the authorization-code flow with PKCE S256 for the /mcp resource.
    client = seen["client"]
    assert client["redirect_uris"] == [REDIRECT_URI]
    assert bool(client.get("client_secret")) is (auth_method != "none")
    authorization = httpx.URL(seen["authorization_url"])
    assert authorization.path == "/authorize"
    assert authorization.params["code_challenge_method"] == "S256"
    assert authorization.params["resource"] == live.mcp_url
    assert seen["sign_in_status"] == 200
    assert seen["callback"].startswith(REDIRECT_URI + "?code=")
    assert seen["redirects"] == 1  # the refresh needed no second sign-in

    first, refreshed = seen["tokens"]
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id and claims["aud"] == [live.mcp_url]
    assert first["token_type"].lower() == "bearer" and first["expires_in"] > 0
    assert refreshed["refresh_token"] != first["refresh_token"]  # rotated
    assert refreshed["access_token"] != first["access_token"]

    assert_results_follow_the_spec(seen["calls"], seen["tools"])
    after = seen["after_refresh"]
    assert not after.get("isError")
    assert [t["title"] for t in after["structuredContent"]["result"]] == [f"OAuth {auth_method}"]

    # The tasks are the signed-in user's, seen through the REST API with a sign-in token.
    r = await rest.post("/api/auth/signin", json={"email": email, "password": password})
    token = r.json()["access_token"]
    tasks = await rest.get(f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert [t["title"] for t in tasks.json()] == [f"OAuth {auth_method}"]


async def test_ts_sdk_logs_in_with_an_outside_issuer(ts_sdk, database_url: str) -> None:
    """Outside-issuer set-up: the metadata sends the client to the issuer (a stub standing in
    for Better Auth, with EdDSA tokens and a JWKS), and /mcp accepts what it issued."""
    subject = f"issuer-user-{uuid.uuid4().hex[:8]}"
    issuer = StubIssuer(subject).start()
    settings = make_settings(database_url, jwt_issuer=issuer.url, jwt_jwks_url=issuer.url + "/jwks")
    live = await asyncio.to_thread(LiveServer(settings).start)
    try:
        seen = await run_client(
            live.mcp_url,
            "oauth",
            redirect_uri=REDIRECT_URI,
            auth_method="none",
            auto_approve=True,
            title="Via the outside issuer",
        )
        async with httpx.AsyncClient(base_url=live.base) as rest:
            own_server = await rest.get("/.well-known/oauth-authorization-server")
            token = issuer.key.sign(
                {
                    "sub": subject,
                    "iss": issuer.url,
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 300,
                }
            )
            tasks = await rest.get(
                f"/api/{subject}/tasks", headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        await asyncio.to_thread(live.stop)
        issuer.stop()
    assert own_server.status_code == 404  # nothing here pretends to be the issuer
    assert httpx.URL(seen["authorization_url"]).host == "127.0.0.1"
    assert seen["authorization_url"].startswith(issuer.url + "/authorize?")
    first, refreshed = seen["tokens"]
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == (issuer.url, live.mcp_url)
    assert refreshed["access_token"] != first["access_token"]
    assert_results_follow_the_spec(seen["calls"], seen["tools"])
    assert [t["title"] for t in seen["after_refresh"]["structuredContent"]["result"]] == [
        "Via the outside issuer"
    ]
    assert [t["title"] for t in tasks.json()] == ["Via the outside issuer"]
