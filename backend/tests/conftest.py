"""Test fixtures: every test runs on SQLite and on PostgreSQL, on a schema made by the migrations.

Each engine gets a database of its own per test run (a SQLite file; a fresh PostgreSQL database
dropped afterwards). Tests isolate by using fresh user ids, so they never see each other's rows.
Under CI=true an unreachable PostgreSQL fails the run: it is never skipped there.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import jwt
import pytest
import uvicorn
from fakes.openai_upstream import FakeUpstream
from fastapi import FastAPI

from todochat.config import Settings
from todochat.main import create_app
from todochat.migrate import migrate

if TYPE_CHECKING:
    from tests.mcp_support import LiveServer

# The `chromium` and `browser` fixtures of the page tests (playground, OAuth sign-in page).
pytest_plugins = ["tests.browser"]

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
PG_ADMIN_URL = Settings(
    _env_file=None,  # type: ignore[call-arg]
    database_url=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    ),
).database_url
ENGINES = ["sqlite", "postgres"]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def create_pg_database() -> str:
    problem = await _pg_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem}); run .ci/run to require it")
    name = f"todochat_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=ENGINES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database for this run: one per engine."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "todochat.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(migrate, url)
        yield url
    else:
        url = await create_pg_database()
        try:
            await asyncio.to_thread(migrate, url)
            yield url
        finally:
            await drop_pg_database(url)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "better_auth_secret": TEST_SECRET,
        "model_provider": "offline",
        "rate_limit_chat": "10000/minute",
        "rate_limit_task_writes": "10000/minute",
        "rate_limit_auth": "10000/minute",
        "rate_limit_mcp": "10000/minute",
        "log_level": "WARNING",
        # Many apps start and stop in one test process; frozen objects would never be freed.
        "gc_freeze": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class RunningApp:
    """The app with its lifespan entered and exited in one task, as uvicorn does it (the MCP
    client's task group must be left from the task that entered it)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.app.router.lifespan_context(self.app):
            self._ready.set()
            await self._stop.wait()

    async def start(self) -> RunningApp:
        self._task = asyncio.create_task(self._run())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()  # raises the start-up error
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test"
        )


def openai_settings(database_url: str, base_url: str, **overrides: Any) -> Settings:
    """`make_settings` for the OpenAI path against an OpenAI-compatible server at `base_url`
    (the fake upstream, usually)."""
    values: dict[str, Any] = {
        "model_provider": "openai",
        "openai_api_key": "sk-test-not-a-real-key",
        "openai_base_url": base_url,
        "openai_model": "fake-model",
    }
    return make_settings(database_url, **{**values, **overrides})


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The app behind a real uvicorn on 127.0.0.1, in this event loop; yields its base URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def start_app(settings: Settings) -> RunningApp:
    return await RunningApp(create_app(settings)).start()


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    running = await start_app(make_settings(database_url))
    try:
        yield running.app
    finally:
        await running.stop()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def token_for(user_id: str, *, secret: str = TEST_SECRET, ttl: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": user_id, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


class User:
    """A fresh user id with a valid token: no local row needed, as with Better Auth."""

    def __init__(self) -> None:
        self.id = f"user-{uuid.uuid4().hex[:10]}"
        self.token = token_for(self.id)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str = "") -> str:
        return f"/api/{self.id}{path}"


@pytest.fixture
def new_user() -> Callable[[], User]:
    return User


@pytest.fixture
def user() -> User:
    return User()


@pytest.fixture
def other_user() -> User:
    return User()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """The one OpenAI-compatible fake model server of the run (fakes/openai_upstream.py)."""
    fake = FakeUpstream().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The fake model, reset for one test; the test fails if a scripted move was never used."""
    behaviour = fake_upstream.behaviour
    behaviour.__init__()  # type: ignore[misc]
    behaviour.record_requests = True
    yield fake_upstream
    leftover = list(behaviour.script)
    behaviour.__init__()  # type: ignore[misc]
    assert not leftover, f"scripted model moves never used: {leftover}"


@pytest.fixture(scope="module")
async def openai_url(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[str]:
    """The app on the OpenAI path against the shared fake upstream, behind uvicorn; a quick
    keep-alive so streams show it."""
    async with served(
        openai_settings(database_url, fake_upstream.base_url, chat_stream_heartbeat_s=0.2)
    ) as url:
        yield url


@pytest.fixture(scope="session")
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    """The app behind a real uvicorn on 127.0.0.1 (MCP over HTTP, with the REST API beside)."""
    from tests.mcp_support import LiveServer  # it imports this module

    server = await asyncio.to_thread(LiveServer(make_settings(database_url)).start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def rest(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base) as client:
        yield client
