"""Hardening (OWASP API8, API9, API4): security headers on every answer, errors without
internals, CORS from an allowlist, /docs and /playground off in production and loading nothing
from another host, request and token size limits,
and every route documenting the errors it can give."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from tests.conftest import TEST_SECRET, RunningApp, User, make_settings, start_app
from tests.security.routes import ALL, OBJECT_KINDS, Endpoint, ids
from tests.security.support import snapshot
from todochat.auth.dependencies import authenticated, current_user
from todochat.config import Settings
from todochat.db import get_database
from todochat.ratelimit import AuthRateLimit, ChatRateLimit, TaskWriteRateLimit

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
INTERNALS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "aiosqlite", "SELECT ", "Error(")


def assert_hardened(r: httpx.Response, *, csp: str | None = None) -> None:
    for name, value in API_HEADERS.items():
        expected = csp if name == "content-security-policy" and csp else value
        assert r.headers.get(name) == expected, (r.status_code, name, r.headers.get(name))
    assert r.headers.get("x-request-id")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def assert_clean_error(r: httpx.Response) -> None:
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) <= {"detail", "errors"} and isinstance(body["detail"], str)
    for fragment in INTERNALS:
        assert fragment not in r.text, fragment


# --- headers on every kind of answer ----------------------------------------------------------

Scenario = Callable[[httpx.AsyncClient, User], Awaitable[httpx.Response]]


async def _created_task(client: httpx.AsyncClient, user: User) -> int:
    r = await client.post(user.url("/tasks"), json={"title": "t"}, headers=user.headers)
    return int(r.json()["id"])


async def _streamed(client: httpx.AsyncClient, user: User) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    headers = {**user.headers, "Content-Type": "application/json"}
    return await client.post(user.url("/tasks"), content=chunks(), headers=headers)


SCENARIOS: dict[str, tuple[int, Scenario]] = {
    "200": (200, lambda c, u: c.get(u.url("/tasks"), headers=u.headers)),
    "201": (201, lambda c, u: c.post(u.url("/tasks"), json={"title": "x"}, headers=u.headers)),
    "204": (
        204,
        lambda c, u: _then(
            _created_task(c, u), lambda t: c.delete(u.url(f"/tasks/{t}"), headers=u.headers)
        ),
    ),
    "401": (401, lambda c, u: c.get(u.url("/tasks"))),
    "403": (403, lambda c, u: c.get(User().url("/tasks"), headers=u.headers)),
    "404-route": (404, lambda c, u: c.get("/no/such/route")),
    "404-object": (404, lambda c, u: c.get(u.url("/tasks/999999"), headers=u.headers)),
    "405": (405, lambda c, u: c.request("TRACE", u.url("/tasks"), headers=u.headers)),
    "413-length": (
        413,
        lambda c, u: c.post(u.url("/tasks"), content=b"x" * 40_000, headers=u.headers),
    ),
    "413-streamed": (413, _streamed),
    "422-body": (422, lambda c, u: c.post(u.url("/tasks"), json={"title": ""}, headers=u.headers)),
    "422-json": (
        422,
        lambda c, u: c.post(
            u.url("/tasks"),
            content=b"{nope",
            headers={**u.headers, "Content-Type": "application/json"},
        ),
    ),
    "health": (200, lambda c, u: c.get("/health")),
}


async def _then(
    first: Awaitable[Any], then: Callable[[Any], Awaitable[httpx.Response]]
) -> httpx.Response:
    return await then(await first)


@pytest.fixture(scope="module")
async def small_app(database_url: str) -> AsyncIterator[RunningApp]:
    running = await start_app(
        make_settings(database_url, max_body_bytes=32_768, rate_limit_task_writes="1000/minute")
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_answer_carries_the_security_headers(small_app, scenario) -> None:
    status, make = SCENARIOS[scenario]
    user = User()
    async with small_app.client() as client:
        r = await make(client, user)
    assert r.status_code == status, r.text
    assert_hardened(r)
    if status >= 400:
        assert_clean_error(r)


async def test_rate_limited_and_unavailable_answers_carry_the_headers(database_url) -> None:
    limited = await start_app(make_settings(database_url, rate_limit_task_writes="1/minute"))
    user = User()
    try:
        async with limited.client() as client:
            await client.post(user.url("/tasks"), json={"title": "one"}, headers=user.headers)
            r = await client.post(user.url("/tasks"), json={"title": "two"}, headers=user.headers)
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
            assert_hardened(r)
            assert_clean_error(r)
    finally:
        await limited.stop()

    down = await start_app(make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/none"))
    try:
        async with down.client() as client:
            r = await client.get(user.url("/tasks"), headers=user.headers)
            assert r.status_code == 503 and r.headers["retry-after"]
            assert_hardened(r)
            assert_clean_error(r)
            assert "127.0.0.1" not in r.text and "9/none" not in r.text
    finally:
        await down.stop()


async def test_an_unexpected_error_is_a_bare_500_with_headers_and_no_trace_in_the_logs(
    database_url, capsys
) -> None:
    running = await start_app(make_settings(database_url, log_level="INFO"))

    async def explode() -> None:
        raise RuntimeError("SELECT password_hash FROM users WHERE email='ada@example.com' hunter2")

    running.app.add_api_route("/explode", explode)
    try:
        async with running.client() as client:
            r = await client.get("/explode")
    finally:
        await running.stop()
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal server error"}
    assert_hardened(r)
    logs = capsys.readouterr().out
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    errors = [rec for rec in records if rec.get("message") == "unhandled error"]
    assert errors and errors[0]["error_type"] == "RuntimeError"
    assert errors[0]["request_id"] == r.headers["x-request-id"]
    for secret in ("hunter2", "password_hash", "Traceback", "ada@example.com"):
        assert secret not in logs


async def test_chat_is_rate_limited_per_user_and_a_refused_turn_stores_nothing(
    database_url,
) -> None:
    running = await start_app(make_settings(database_url, rate_limit_chat="2/minute"))
    user, other = User(), User()
    try:
        async with running.client() as client:
            for _ in range(2):
                r = await client.post(
                    user.url("/chat"), json={"message": "hi"}, headers=user.headers
                )
                assert r.status_code == 200
            stored = await snapshot(running.app, user.id)
            r = await client.post(user.url("/chat"), json={"message": "hi"}, headers=user.headers)
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
            assert_hardened(r)
            assert await snapshot(running.app, user.id) == stored
            r = await client.post(other.url("/chat"), json={"message": "hi"}, headers=other.headers)
            assert r.status_code == 200  # one user's budget is not another's
    finally:
        await running.stop()


# --- CORS ------------------------------------------------------------------------------------

ALLOWED = "https://app.example.com"
EVIL = "https://evil.example.net"


async def _cors_app(database_url: str, origins: list[str]) -> RunningApp:
    return await start_app(make_settings(database_url, cors_origins=origins))


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }


async def test_cors_answers_only_the_allowlisted_origin(database_url) -> None:
    running = await _cors_app(database_url, [ALLOWED])
    user = User()
    try:
        async with running.client() as client:
            r = await client.options(user.url("/tasks"), headers=_preflight(ALLOWED))
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == ALLOWED
            assert r.headers["access-control-allow-credentials"] == "true"
            assert "Authorization" in r.headers["access-control-allow-headers"]
            assert_hardened(r)

            r = await client.options(user.url("/tasks"), headers=_preflight(EVIL))
            assert r.status_code == 400
            assert "access-control-allow-origin" not in r.headers

            r = await client.get(user.url("/tasks"), headers={**user.headers, "Origin": EVIL})
            assert "access-control-allow-origin" not in r.headers
            r = await client.get(user.url("/tasks"), headers={**user.headers, "Origin": ALLOWED})
            assert r.headers["access-control-allow-origin"] == ALLOWED
            assert "origin" in r.headers["vary"].lower()
    finally:
        await running.stop()


async def test_a_wildcard_origin_never_comes_with_credentials(database_url) -> None:
    running = await _cors_app(database_url, ["*"])
    user = User()
    try:
        async with running.client() as client:
            for r in (
                await client.options(user.url("/tasks"), headers=_preflight(EVIL)),
                await client.get(user.url("/tasks"), headers={**user.headers, "Origin": EVIL}),
            ):
                assert r.headers["access-control-allow-origin"] == "*"
                assert "access-control-allow-credentials" not in r.headers
    finally:
        await running.stop()


async def test_without_an_allowlist_no_origin_is_allowed(client, user) -> None:
    r = await client.options(user.url("/tasks"), headers=_preflight(ALLOWED))
    assert "access-control-allow-origin" not in r.headers
    r = await client.get(user.url("/tasks"), headers={**user.headers, "Origin": ALLOWED})
    assert "access-control-allow-origin" not in r.headers


# --- /docs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "docs_on"),
    [
        ({}, True),
        ({"docs_enabled": False}, False),
        ({"app_env": "production"}, False),
        ({"app_env": "production", "docs_enabled": True}, True),
    ],
    ids=["development", "switched-off", "production-default", "production-switched-on"],
)
async def test_docs_follow_the_switch_and_are_off_by_default_in_production(
    database_url, overrides, docs_on
) -> None:
    running = await start_app(make_settings(database_url, **overrides))
    try:
        async with running.client() as client:
            for path in ("/docs", "/docs/swagger-ui-bundle.js", "/openapi.json", "/redoc"):
                r = await client.get(path)
                if docs_on and path != "/redoc":
                    assert r.status_code == 200
                else:
                    assert r.status_code == 404
                    assert_clean_error(r)
            if docs_on:
                r = await client.get("/docs")
                assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
                assert r.headers["x-frame-options"] == "DENY"
    finally:
        await running.stop()


def test_docs_enabled_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("BETTER_AUTH_SECRET", TEST_SECRET)
    assert Settings(_env_file=None).docs_on is False  # type: ignore[call-arg]
    monkeypatch.setenv("DOCS_ENABLED", "true")
    assert Settings(_env_file=None).docs_on is True  # type: ignore[call-arg]
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DOCS_ENABLED", "false")
    assert Settings(_env_file=None).docs_on is False  # type: ignore[call-arg]


# --- /playground ------------------------------------------------------------------------------

PLAYGROUND_FILES = ("/playground", "/playground/playground.js", "/playground/playground.css")


@pytest.mark.parametrize(
    ("overrides", "playground_on"),
    [
        ({}, True),
        ({"playground_enabled": False}, False),
        ({"app_env": "production"}, False),
        ({"app_env": "production", "playground_enabled": True}, True),
    ],
    ids=["development", "switched-off", "production-default", "production-switched-on"],
)
async def test_the_playground_follows_the_switch_and_is_off_by_default_in_production(
    database_url, overrides, playground_on
) -> None:
    running = await start_app(make_settings(database_url, **overrides))
    try:
        async with running.client() as client:
            for path in PLAYGROUND_FILES:
                r = await client.get(path)
                if playground_on:
                    assert r.status_code == 200, path
                    assert r.headers["x-frame-options"] == "DENY"
                else:
                    assert r.status_code == 404, path
                    assert_clean_error(r)
    finally:
        await running.stop()


def test_playground_enabled_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("BETTER_AUTH_SECRET", TEST_SECRET)
    assert Settings(_env_file=None).playground_on is False  # type: ignore[call-arg]
    monkeypatch.setenv("PLAYGROUND_ENABLED", "true")
    assert Settings(_env_file=None).playground_on is True  # type: ignore[call-arg]
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("PLAYGROUND_ENABLED", "false")
    assert Settings(_env_file=None).playground_on is False  # type: ignore[call-arg]


class _Page(HTMLParser):
    """What a page loads (src, href) and the bodies of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.loads += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_inline_script = tag == "script" and "src" not in found
        if self._in_inline_script:
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (p.split() for p in csp.split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize("page", ["/docs", "/playground"])
async def test_the_pages_load_nothing_from_another_host_and_no_inline_script_but_their_own(
    client, page
) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    csp = _directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    parsed = _Page()
    parsed.feed(r.text)
    # Scripts: this origin, or an inline script whose exact hash the policy names.
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in parsed.inline_scripts
    }
    assert set(csp["script-src"]) == {"'self'", *hashes}
    for sources in csp.values():
        for source in sources:
            assert source.startswith("'") or source == "data:", (page, source)
    # Everything the page names is on this origin, and is served.
    base = f"http://test{page}"
    for link in parsed.loads:
        url = urlsplit(urljoin(base, link))
        if url.scheme == "data":
            continue
        assert (url.scheme, url.netloc) == ("http", "test"), (page, link)
        assert (await client.get(url.path)).status_code == 200, (page, link)
    assert len(parsed.loads) >= 2


# --- size limits -----------------------------------------------------------------------------


async def test_an_oversized_body_is_413_and_writes_nothing(small_app) -> None:
    user = User()
    async with small_app.client() as client:
        big = json.dumps({"title": "x", "description": "d" * 40_000})
        r = await client.post(
            user.url("/tasks"),
            content=big,
            headers={**user.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json() == {"detail": "Request body too large (max 32768 bytes)"}
        r = await _streamed(client, user)
        assert r.status_code == 413
        assert r.json() == {"detail": "Request body too large (max 32768 bytes)"}
        # Just under the limit the body is read and judged on its content instead.
        near = json.dumps({"title": "x" * 30_000})
        r = await client.post(
            user.url("/tasks"),
            content=near,
            headers={**user.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 422
    assert await snapshot(small_app.app, user.id) == {
        "tasks": [],
        "conversations": [],
        "messages": [],
    }


async def test_a_lying_content_length_cannot_smuggle_a_large_body(small_app) -> None:
    user = User()
    async with small_app.client() as client:
        r = await client.post(
            user.url("/tasks"),
            content=b"x" * 10,
            headers={**user.headers, "Content-Length": "not-a-number"},
        )
        assert r.status_code in (413, 422)
    assert (await snapshot(small_app.app, user.id))["tasks"] == []


async def test_chat_messages_are_limited_to_10000_characters(client, user) -> None:
    r = await client.post(user.url("/chat"), json={"message": "x" * 10_001}, headers=user.headers)
    assert r.status_code == 422
    assert r.json()["detail"] == "Message too long (max 10000 characters)"
    r = await client.post(user.url("/chat"), json={"message": "   "}, headers=user.headers)
    assert r.status_code == 422
    assert r.json()["detail"] == "Message cannot be empty"


@pytest.mark.parametrize(
    "path",
    ["/conversations?limit=201", "/conversations?limit=0", "/conversations/1/messages?limit=1001"],
)
async def test_page_sizes_are_bounded(client, user, path) -> None:
    r = await client.get(user.url(path), headers=user.headers)
    assert r.status_code == 422


async def test_an_overlong_or_odd_request_id_is_replaced_not_echoed(client) -> None:
    r = await client.get("/health/live", headers={"X-Request-ID": "r" * 129})
    assert r.headers["x-request-id"] != "r" * 129 and len(r.headers["x-request-id"]) == 32
    r = await client.get("/health/live", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"


# --- every route documents the errors it can give --------------------------------------------


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def expected_errors(endpoint: Endpoint) -> set[str]:
    assert endpoint.route is not None
    calls = _calls(endpoint.route.dependant)
    rate_limits = {d.dependency for d in (AuthRateLimit, ChatRateLimit, TaskWriteRateLimit)}
    expected = set()
    if authenticated in calls:
        expected |= {"401"}
    if current_user in calls:
        expected |= {"403"}
    if endpoint.operation.get("parameters") or endpoint.body_schema is not None:
        expected |= {"422"}
    if endpoint.body_schema is not None:
        expected |= {"413"}
    if set(endpoint.object_params) & set(OBJECT_KINDS):
        expected |= {"404"}
    if calls & rate_limits:
        expected |= {"429"}
    if get_database in calls:
        expected |= {"503"}
    return expected


DOCUMENTED = [e for e in ALL if e.route is not None]


@pytest.mark.parametrize("endpoint", DOCUMENTED, ids=ids(DOCUMENTED))
def test_every_route_documents_the_errors_it_can_give(endpoint: Endpoint) -> None:
    documented = set(endpoint.operation["responses"])
    missing = expected_errors(endpoint) - documented
    assert not missing, f"{endpoint.label} does not document {sorted(missing)}"
    for code in documented - {"200", "201", "204"}:
        schema = endpoint.operation["responses"][code]["content"]["application/json"]["schema"]
        assert schema["$ref"].rsplit("/", 1)[-1] in ("ErrorBody", "Health"), (endpoint.label, code)


def test_sign_up_documents_the_duplicate_email_conflict() -> None:
    signup = next(e for e in DOCUMENTED if e.path == "/api/auth/signup")
    assert "409" in signup.operation["responses"]


async def test_the_running_app_serves_the_document_these_checks_read(app: FastAPI, client) -> None:
    assert (await client.get("/openapi.json")).json() == app.openapi()
