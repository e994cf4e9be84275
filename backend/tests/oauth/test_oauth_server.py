"""The authorization server of /mcp (stand-alone set-up) under attack, on both engines, against
the app served on 127.0.0.1: each attack of issue 18 fails with the spec's OAuth error (never a
500) and changes nothing, and a control shows the same steps done right succeed. The honest
client's whole flow is tested with the TypeScript SDK (tests/mcp/test_mcp_ts_sdk.py)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from tests.conftest import TEST_SECRET, make_settings, start_app
from tests.mcp_support import LiveServer
from todochat.auth.tokens import GRANT_CLAIM, TokenVerifier
from todochat.db import Database, create_engine
from todochat.models import OAuthCode, utcnow
from todochat.oauth.service import OAuthProvider

REDIRECT = "http://127.0.0.1:33418/callback"
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Flow:
    """One user and one registered client, doing the steps an MCP client and a browser do."""

    def __init__(self, live: LiveServer, http: httpx.AsyncClient) -> None:
        self.live = live
        self.http = http
        self.email = f"oauth-{uuid.uuid4().hex[:10]}@example.com"
        self.password = "correct horse battery"

    async def sign_up(self) -> Flow:
        r = await self.http.post(
            "/api/auth/signup", json={"email": self.email, "password": self.password}
        )
        assert r.status_code == 201, r.text
        self.user_id = r.json()["user"]["id"]
        return self

    async def register(self, redirect_uris: list[str] | None = None) -> dict[str, Any]:
        r = await self.http.post(
            "/register",
            json={
                "client_name": "attack test",
                "redirect_uris": redirect_uris or [REDIRECT],
                "token_endpoint_auth_method": "none",
            },
        )
        assert r.status_code == 201, r.text
        client: dict[str, Any] = r.json()
        return client

    async def authorize(self, client_id: str, challenge: str, **extra: str) -> httpx.Response:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "st-1",
            "resource": self.live.mcp_url,
            **extra,
        }
        return await self.http.get("/authorize", params=params)

    async def sign_in_page(self, client_id: str, challenge: str) -> str:
        r = await self.authorize(client_id, challenge)
        assert r.status_code == 302, r.text
        page = await self.http.get(r.headers["location"])
        assert page.status_code == 200
        match = re.search(r'name="request" value="([^"]+)"', page.text)
        assert match is not None
        return match.group(1)

    async def submit(self, request: str, decision: str = "allow", **fields: str) -> httpx.Response:
        form = {"request": request, "email": self.email, "password": self.password}
        return await self.http.post("/oauth/sign-in", data={**form, **fields, "decision": decision})

    async def code(self, client_id: str, challenge: str) -> str:
        r = await self.submit(await self.sign_in_page(client_id, challenge))
        assert r.status_code == 303, r.text
        target = httpx.URL(r.headers["location"])
        assert str(target.copy_with(query=None)) == REDIRECT
        assert target.params["state"] == "st-1"
        return target.params["code"]

    async def token(self, **form: str) -> httpx.Response:
        return await self.http.post("/token", data=form)

    async def exchange(self, client_id: str, code: str, verifier: str) -> httpx.Response:
        return await self.token(
            grant_type="authorization_code",
            code=code,
            client_id=client_id,
            code_verifier=verifier,
            redirect_uri=REDIRECT,
        )

    async def refresh(self, client_id: str, refresh_token: str) -> httpx.Response:
        return await self.token(
            grant_type="refresh_token", refresh_token=refresh_token, client_id=client_id
        )

    async def tokens(self) -> tuple[str, dict[str, Any]]:
        client_id = (await self.register())["client_id"]
        verifier, challenge = pkce()
        r = await self.exchange(client_id, await self.code(client_id, challenge), verifier)
        assert r.status_code == 200, r.text
        return client_id, r.json()

    async def mcp_status(self, access_token: str) -> int:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
        r = await self.http.post("/mcp", json=LIST_TOOLS, headers=headers)
        return r.status_code


@pytest.fixture
async def flow(live: LiveServer) -> Any:
    async with httpx.AsyncClient(base_url=live.base) as http:
        yield await Flow(live, http).sign_up()


def oauth_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error, r.text
    assert "location" not in r.headers


async def test_metadata_describes_this_server_and_mcp_points_at_it(flow: Flow) -> None:
    base = flow.live.base
    meta = (await flow.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == base
    assert meta["authorization_endpoint"] == base + "/authorize"
    assert meta["token_endpoint"] == base + "/token"
    assert meta["registration_endpoint"] == base + "/register"
    assert meta["revocation_endpoint"] == base + "/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    resource = (await flow.http.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert resource["authorization_servers"] == [base]


async def test_a_replayed_code_fails_and_revokes_what_it_bought(flow: Flow) -> None:
    client_id = (await flow.register())["client_id"]
    verifier, challenge = pkce()
    code = await flow.code(client_id, challenge)
    first = await flow.exchange(client_id, code, verifier)
    assert first.status_code == 200, first.text  # control: the first use works
    tokens = first.json()
    assert await flow.mcp_status(tokens["access_token"]) == 200
    oauth_error(await flow.exchange(client_id, code, verifier), 400, "invalid_grant")
    # Someone else held the code: the tokens of the first exchange stop working too.
    assert await flow.mcp_status(tokens["access_token"]) == 401
    oauth_error(await flow.refresh(client_id, tokens["refresh_token"]), 400, "invalid_grant")


async def test_a_code_used_by_another_client_fails(flow: Flow) -> None:
    mine = (await flow.register())["client_id"]
    thief = (await flow.register())["client_id"]
    verifier, challenge = pkce()
    code = await flow.code(mine, challenge)
    oauth_error(await flow.exchange(thief, code, verifier), 400, "invalid_grant")
    # Control: the code was not spent by the failed attempt.
    assert (await flow.exchange(mine, code, verifier)).status_code == 200


async def test_a_wrong_pkce_verifier_fails(flow: Flow) -> None:
    client_id = (await flow.register())["client_id"]
    verifier, challenge = pkce()
    code = await flow.code(client_id, challenge)
    other_verifier, _ = pkce()
    r = await flow.exchange(client_id, code, other_verifier)
    oauth_error(r, 400, "invalid_grant")
    assert r.json()["error_description"] == "incorrect code_verifier"
    # Only S256: a plain challenge is refused at /authorize.
    r = await flow.authorize(client_id, verifier, code_challenge_method="plain")
    assert r.status_code == 302
    assert httpx.URL(r.headers["location"]).params["error"] == "invalid_request"
    assert (await flow.exchange(client_id, code, verifier)).status_code == 200


async def test_an_unregistered_redirect_uri_is_never_redirected_to(flow: Flow) -> None:
    client_id = (await flow.register())["client_id"]
    _, challenge = pkce()
    for uri in (
        "http://127.0.0.1:33418/callback/other",
        "http://127.0.0.1:33419/callback",
        "http://evil.example/callback",
        REDIRECT + "?next=http://evil.example",
    ):
        r = await flow.authorize(client_id, challenge, redirect_uri=uri)
        oauth_error(r, 400, "invalid_request")
        assert "not registered" in r.json()["error_description"]
    # OAuth 2.1: the redirect URI is required, even with one registered.
    params = {
        "response_type": "code",
        "client_id": client_id,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await flow.http.get("/authorize", params=params)
    assert r.status_code == 302
    assert httpx.URL(r.headers["location"]).params["error"] == "invalid_request"


async def test_no_open_redirect_through_registration_or_the_sign_in_page(flow: Flow) -> None:
    for uris in (
        ["http://evil.example/cb"],  # plain HTTP off this machine
        ["javascript:alert(1)"],
        ["https://good.example/cb#fragment"],
        ["https://user:pw@good.example/cb"],
    ):
        r = await flow.http.post(
            "/register", json={"redirect_uris": uris, "token_endpoint_auth_method": "none"}
        )
        assert r.status_code == 400, uris
        assert r.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata"), r.text
    # A sign-in link whose request was altered or forged leads nowhere.
    client_id = (await flow.register())["client_id"]
    _, challenge = pkce()
    request = await flow.sign_in_page(client_id, challenge)
    claims = jwt.decode(request, options={"verify_signature": False})
    forged = jwt.encode({**claims, "redirect_uri": "https://evil.example/cb"}, "guessed-secret")
    for bad in (forged, request[:-4] + "AAAA", "", "x" * 10_000):
        page = await flow.http.get("/oauth/sign-in", params={"request": bad})
        assert page.status_code == 400 and "not valid or has expired" in page.text
        r = await flow.submit(bad)
        assert r.status_code == 400 and "location" not in r.headers
    # An unknown client gets an error page, not a redirect.
    r = await flow.authorize("no-such-client", challenge)
    oauth_error(r, 400, "invalid_request")


async def test_a_refresh_token_reused_after_rotation_ends_the_grant(flow: Flow) -> None:
    client_id, first = await flow.tokens()
    second = await flow.refresh(client_id, first["refresh_token"])
    assert second.status_code == 200, second.text  # control: rotation works
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert await flow.mcp_status(rotated["access_token"]) == 200
    oauth_error(await flow.refresh(client_id, first["refresh_token"]), 400, "invalid_grant")
    # One of the two holders is a thief: everything of the grant stops working.
    oauth_error(await flow.refresh(client_id, rotated["refresh_token"]), 400, "invalid_grant")
    assert await flow.mcp_status(rotated["access_token"]) == 401


async def test_a_token_for_another_audience_is_refused(flow: Flow, live: LiveServer) -> None:
    client_id, tokens = await flow.tokens()
    assert await flow.mcp_status(tokens["access_token"]) == 200  # control
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    elsewhere = {**claims, "aud": ["https://other.example/mcp"]}
    assert await flow.mcp_status(jwt.encode(elsewhere, TEST_SECRET)) == 401
    # A sign-in style token that names another audience is refused at /mcp too.
    now = int(time.time())
    plain = {"sub": flow.user_id, "iat": now, "exp": now + 600, "aud": "https://other.example"}
    assert await flow.mcp_status(jwt.encode(plain, TEST_SECRET)) == 401
    # The /mcp token is not a REST token.
    r = await flow.http.get(
        f"/api/{flow.user_id}/tasks", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 401
    # Nor can a client ask for a token for another resource.
    _, challenge = pkce()
    r = await flow.authorize(client_id, challenge, resource="https://other.example/mcp")
    assert r.status_code == 302
    assert httpx.URL(r.headers["location"]).params["error"] == "invalid_target"
    assert GRANT_CLAIM in claims


async def test_revocation_ends_the_grant(flow: Flow) -> None:
    client_id, tokens = await flow.tokens()
    r = await flow.http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": client_id}
    )
    assert r.status_code == 200
    assert await flow.mcp_status(tokens["access_token"]) == 401
    oauth_error(await flow.refresh(client_id, tokens["refresh_token"]), 400, "invalid_grant")
    # Revoking by the access token works the same way.
    client_id, tokens = await flow.tokens()
    r = await flow.http.post(
        "/revoke", data={"token": tokens["access_token"], "client_id": client_id}
    )
    assert r.status_code == 200
    assert await flow.mcp_status(tokens["access_token"]) == 401


async def test_deny_and_wrong_password_issue_no_code(flow: Flow) -> None:
    client_id = (await flow.register())["client_id"]
    _, challenge = pkce()
    request = await flow.sign_in_page(client_id, challenge)
    r = await flow.submit(request, password="not the password")
    assert r.status_code == 401 and "Wrong email or password" in r.text
    assert "location" not in r.headers
    r = await flow.submit(request, decision="deny")
    assert r.status_code == 303
    back = httpx.URL(r.headers["location"])
    assert back.params["error"] == "access_denied" and back.params["state"] == "st-1"
    assert "code" not in back.params


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_a_sign_in_sent_from_another_site_is_refused(flow: Flow, site: str) -> None:
    """Login CSRF: another site's page posts the sign-in form (with the attacker's own pending
    request and password, or a victim's). Browsers mark it in Fetch Metadata; it is refused,
    and no code or denial goes back to the client."""
    client_id = (await flow.register())["client_id"]
    _, challenge = pkce()
    request = await flow.sign_in_page(client_id, challenge)
    for decision in ("allow", "deny"):
        r = await flow.http.post(
            "/oauth/sign-in",
            data={
                "request": request,
                "email": flow.email,
                "password": flow.password,
                "decision": decision,
            },
            headers={"Sec-Fetch-Site": site, "Origin": "https://attacker.example"},
        )
        assert r.status_code == 403, r.text
        assert "Sign in from this page" in r.text
        assert "location" not in r.headers
    # The same form from this page (as a browser marks it) goes through.
    r = await flow.http.post(
        "/oauth/sign-in",
        data={
            "request": request,
            "email": flow.email,
            "password": flow.password,
            "decision": "allow",
        },
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 303
    assert "code" in httpx.URL(r.headers["location"]).params


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", {}),
        ("/token", {"grant_type": "password", "client_id": "x"}),
        ("/token", {"grant_type": "authorization_code", "client_id": "x" * 5000, "code": "c"}),
        ("/revoke", {"token": "t"}),
        ("/register", None),
    ],
)
async def test_malformed_requests_get_oauth_errors_never_500(
    flow: Flow, path: str, body: dict[str, str] | None
) -> None:
    if body is None:
        r = await flow.http.post(
            path, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    else:
        r = await flow.http.post(path, data=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"] in {
        "invalid_request",
        "invalid_client",
        "invalid_client_metadata",
        "unauthorized_client",
        "unsupported_grant_type",
    }


async def test_with_an_outside_issuer_nothing_here_pretends_to_be_one(database_url: str) -> None:
    settings = make_settings(database_url, jwt_issuer="https://auth.example.com")
    running = await start_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://127.0.0.1"
        ) as c:
            meta = (await c.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert meta["authorization_servers"] == ["https://auth.example.com"]
            for method, path in (
                ("GET", "/.well-known/oauth-authorization-server"),
                ("POST", "/register"),
                ("GET", "/authorize"),
                ("POST", "/token"),
                ("GET", "/oauth/sign-in"),
            ):
                assert (await c.request(method, path)).status_code == 404, path
    finally:
        await running.stop()


async def test_an_expired_code_fails_and_expired_rows_are_purged(
    flow: Flow, database_url: str
) -> None:
    client_id = (await flow.register())["client_id"]
    verifier, challenge = pkce()
    code = await flow.code(client_id, challenge)
    code_hash = hashlib.sha256(code.encode()).hexdigest()
    settings = make_settings(database_url)
    database = Database(create_engine(settings))
    past = utcnow() - timedelta(seconds=1)

    async def expire(session: AsyncSession) -> None:
        this_code = col(OAuthCode.code_hash) == code_hash
        await session.execute(sa.update(OAuthCode).where(this_code).values(expires_at=past))

    async def stored(session: AsyncSession) -> OAuthCode | None:
        return await session.get(OAuthCode, code_hash)

    try:
        await database.run(expire)
        r = await flow.exchange(client_id, code, verifier)
        oauth_error(r, 400, "invalid_grant")
        assert r.json()["error_description"] == "authorization code has expired"
        provider = OAuthProvider(
            database=database,
            settings=settings,
            verifier=TokenVerifier(settings),
            resource_url=lambda: flow.live.mcp_url,
        )
        assert await database.run(stored) is not None
        await provider.purge_expired()
        assert await database.run(stored) is None
    finally:
        await database.dispose()
