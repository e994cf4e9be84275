"""Database faults, injected for real against PostgreSQL (each test on a database of its own):

1. `pg_terminate_backend` on the service's connections, again and again, while a stream of
   task writes and chat turns runs; clients retry with their Idempotency-Key. Every answer is
   a success or a clean 503/409 JSON error, and afterwards the database holds exactly one copy
   of every task and message.
2. The database unreachable (a TCP proxy in front of PostgreSQL is cut: connections reset and
   the port refuses), then hung (the port accepts and never answers), then back.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from tests.conftest import (
    PG_ADMIN_URL,
    User,
    _asyncpg_dsn,
    create_pg_database,
    drop_pg_database,
    make_settings,
    start_app,
)
from tests.faults import LogCapture, TcpProxy
from todochat.migrate import migrate

pytestmark = pytest.mark.slow

DB_DOWN = "The database is temporarily unavailable. Please try again in a moment."


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    try:
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        await drop_pg_database(url)


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Ledger:
    """What the clients were told: every answer, and what was acknowledged."""

    statuses: list[int] = field(default_factory=list)
    replayed: int = 0
    unclean: list[str] = field(default_factory=list)
    tasks: dict[str, int] = field(default_factory=dict)  # title -> id, from 201s
    chats: dict[str, dict] = field(default_factory=dict)  # message -> 200 body


async def _with_retries(
    client: httpx.AsyncClient, url: str, body: dict, user: User, ledger: Ledger
) -> httpx.Response:
    headers = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
    for _ in range(60):
        r = await client.post(url, json=body, headers=headers)
        ledger.statuses.append(r.status_code)
        if r.status_code in (200, 201):
            ledger.replayed += r.headers.get("Idempotent-Replayed") == "true"
            return r
        ok_shape = (
            r.status_code in (503, 409)
            and r.headers.get("content-type") == "application/json"
            and isinstance(r.json().get("detail"), str)
            and "Retry-After" in r.headers
        )
        if not ok_shape:
            ledger.unclean.append(f"{r.status_code} {r.text[:200]}")
            raise AssertionError(f"unclean failure: {r.status_code} {r.text[:200]}")
        await asyncio.sleep(0.05)
    raise AssertionError("never acknowledged")


async def _worker(client: httpx.AsyncClient, n: int, ledger: Ledger, user: User) -> None:
    for i in range(4):
        title = f"Errand {n}-{i}-{uuid.uuid4().hex[:6]}"
        r = await _with_retries(client, user.url("/tasks"), {"title": title}, user, ledger)
        ledger.tasks[title] = r.json()["id"]
        message = f"add chore {n}-{i}-{uuid.uuid4().hex[:6]}"
        r = await _with_retries(client, user.url("/chat"), {"message": message}, user, ledger)
        ledger.chats[message] = r.json()


async def _terminate_loop(dbname: str, stop: asyncio.Event) -> int:
    """Kill every backend of the test database (and only of it) every 30-90 ms."""
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    killed = 0
    try:
        while not stop.is_set():
            killed += await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                dbname,
            )
            await asyncio.sleep(random.uniform(0.03, 0.09))
    finally:
        await conn.close()
    return killed


async def test_terminated_connections_never_lose_or_duplicate_a_write(pg_url) -> None:
    # A lease lost to the storm would block a retry until it runs out: keep that short here.
    settings = make_settings(
        pg_url,
        db_pool_size=4,
        db_max_overflow=4,
        chat_turn_timeout_s=5,
        chat_turn_lease_s=2,
        idempotency_wait_s=2,
    )
    running = await start_app(settings)
    ledger = Ledger()
    users = [User() for _ in range(4)]
    stop = asyncio.Event()
    try:
        with LogCapture() as logs:
            async with running.client() as client:
                killer = asyncio.create_task(_terminate_loop(pg_url.rsplit("/", 1)[1], stop))
                try:
                    await asyncio.gather(
                        *[_worker(client, n, ledger, u) for n, u in enumerate(users)]
                    )
                finally:
                    stop.set()
                    killed = await killer
                metrics = (await client.get("/metrics")).text
    finally:
        await running.stop()

    retries = _metric(metrics, "todochat_db_retries_total")
    failures = sum(1 for s in ledger.statuses if s >= 500)
    resumed = logs.text.count("resuming an abandoned chat turn")
    unknown = logs.text.count("commit outcome unknown")
    print(
        f"\nterminated backends: {killed}; requests: {len(ledger.statuses)}; "
        f"503s: {failures}; 409s: {ledger.statuses.count(409)}; server-side retries: {retries}; "
        f"commits of unknown outcome: {unknown}; replayed: {ledger.replayed}; "
        f"chat turns resumed: {resumed}"
    )
    assert ledger.unclean == []
    assert killed > 0
    assert retries + failures > 0, "the fault never hit a request in flight"

    conn = await asyncpg.connect(_asyncpg_dsn(pg_url))
    try:
        for user in users:
            rows = await conn.fetch("SELECT id, title FROM tasks WHERE user_id = $1", user.id)
            titles = [r["title"] for r in rows]
            assert len(titles) == len(set(titles)), "a task was written twice"
            conversations = await conn.fetchval(
                "SELECT count(*) FROM conversations WHERE user_id = $1", user.id
            )
            assert conversations == 4, "a turn opened two conversations"
        by_title = {
            r["title"]: r["id"]
            for r in await conn.fetch(
                "SELECT id, title FROM tasks WHERE user_id = ANY($1::text[])",
                [u.id for u in users],
            )
        }
        for title, task_id in ledger.tasks.items():
            assert by_title.get(title) == task_id
        for message, answer in ledger.chats.items():
            created = [c["result"] for c in answer["tool_calls"] if c["name"] == "add_task"]
            for result in created:
                if "task_id" in result:
                    assert by_title.get(result["title"]) == result["task_id"]
            rows = await conn.fetch(
                "SELECT role, content FROM messages WHERE conversation_id = $1 ORDER BY id",
                answer["conversation_id"],
            )
            assert [r["role"] for r in rows] == ["user", "assistant"], rows
            assert rows[0]["content"] == message
            assert rows[1]["content"] == answer["response"]
        assert len(by_title) == len(ledger.tasks) + sum(
            1
            for a in ledger.chats.values()
            for c in a["tool_calls"]
            if c["name"] == "add_task" and "task_id" in c["result"]
        )
    finally:
        await conn.close()


async def test_unreachable_database_is_reported_fast_and_recovers(pg_url) -> None:
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = await TcpProxy(host, int(port)).start()
    proxied = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    running = await start_app(make_settings(proxied, db_connect_timeout_s=1))
    user = User()
    try:
        async with running.client() as c:
            r = await c.post(user.url("/tasks"), json={"title": "Before"}, headers=user.headers)
            assert r.status_code == 201

            await proxy.cut()  # connections reset, port closed
            started = time.monotonic()
            r = await c.get("/health")
            assert time.monotonic() - started < 2
            assert r.status_code == 503
            assert r.json()["status"] == "degraded"
            assert r.json()["database"] == {"status": "down", "latency_ms": None}
            assert (await c.get("/health/live")).status_code == 200

            for method, path, body in (
                ("POST", "/tasks", {"title": "During"}),
                ("GET", "/tasks", None),
                ("POST", "/chat", {"message": "add during the outage"}),
                ("GET", "/conversations", None),
            ):
                started = time.monotonic()
                r = await c.request(method, user.url(path), json=body, headers=user.headers)
                assert r.status_code == 503, (path, r.text)
                assert r.json() == {"detail": DB_DOWN}
                assert r.headers["Retry-After"]
                assert time.monotonic() - started < 5  # not the 30 s pool timeout

            await proxy.blackhole()  # the port accepts and never answers
            started = time.monotonic()
            r = await c.get("/health")
            assert time.monotonic() - started < 2
            assert r.status_code == 503 and r.json()["status"] == "degraded"

            await proxy.restore()
            deadline = time.monotonic() + 10
            while (r := await c.get("/health")).status_code != 200:
                assert time.monotonic() < deadline, "health never recovered"
                await asyncio.sleep(0.1)
            assert r.json()["database"]["status"] == "ok"
            r = await c.post(user.url("/tasks"), json={"title": "After"}, headers=user.headers)
            assert r.status_code == 201
            r = await c.get(user.url("/tasks"), headers=user.headers)
            assert [t["title"] for t in r.json()] == ["After", "Before"]
            metrics = (await c.get("/metrics")).text
            assert _metric(metrics, 'todochat_db_errors_total{kind="unavailable"}') >= 4
    finally:
        await running.stop()
        await proxy.stop()


async def _app_backends(admin: asyncpg.Connection, url: str) -> set[int]:
    name = url.rsplit("/", 1)[1]
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
    )
    return {r["pid"] for r in rows}


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_connection_closed_by_the_server_is_replaced_before_use(pg_url, pre_ping) -> None:
    """Pre-ping (P2) finds a connection the server closed before a unit of work uses it; with
    it off, the unit of work meets the dead connection and has to be retried."""
    running = await start_app(
        make_settings(pg_url, db_pool_size=1, db_max_overflow=0, db_pool_pre_ping=pre_ping)
    )
    user = User()
    admin = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    try:
        async with running.client() as c:
            r = await c.post(user.url("/tasks"), json={"title": "first"}, headers=user.headers)
            assert r.status_code == 201
            killed = await _app_backends(admin, pg_url)
            assert killed
            for pid in killed:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            # Once the backends are gone their goodbye has been sent; one more pass of the
            # event loop and the idle pooled connection has read it.
            deadline = time.monotonic() + 10
            while (await _app_backends(admin, pg_url)) & killed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.05)
            with LogCapture() as logs:
                r = await c.post(user.url("/tasks"), json={"title": "second"}, headers=user.headers)
            assert r.status_code == 201
            retried = "transient database error, retrying" in logs.stream.getvalue()
            assert retried is (not pre_ping)
            assert not (await _app_backends(admin, pg_url)) & killed
            r = await c.get(user.url("/tasks"), headers=user.headers)
            assert sorted(t["title"] for t in r.json()) == ["first", "second"]
    finally:
        await admin.close()
        await running.stop()


async def test_connection_idle_for_long_is_pinged_and_a_busy_one_is_not(
    pg_url, monkeypatch
) -> None:
    """The ping's empty statement is seen on the wire by asyncpg's own query logger."""
    import todochat.db.engine

    running = await start_app(make_settings(pg_url, db_pool_size=1, db_max_overflow=0))
    engine = running.app.state.database.engine
    queries: list[str] = []
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            raw.driver_connection.add_query_logger(lambda record: queries.append(record.query))
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        assert queries and ";" not in queries  # used a moment ago: no ping
        seen = len(queries)
        monkeypatch.setattr(todochat.db.engine, "PING_IF_IDLE_S", 0.0)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 2")
        # The ping (an empty statement), then the unit of work.
        assert queries[seen:] == [";", "BEGIN;", "ROLLBACK;"]
    finally:
        await running.stop()


async def test_a_silently_dropped_idle_connection_fails_its_ping_in_seconds(
    pg_url, monkeypatch
) -> None:
    """The NAT/proxy case the idle ping exists for: the path drops every byte and closes
    nothing. The ping gives up after PING_TIMEOUT_S instead of waiting for TCP (minutes), and
    the request answers 503; once the path is back, so is the service."""
    import todochat.db.engine

    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = await TcpProxy(host, int(port)).start()
    proxied = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    running = await start_app(
        make_settings(proxied, db_pool_size=1, db_max_overflow=0, db_connect_timeout_s=1)
    )
    user = User()
    try:
        async with running.client() as c:
            r = await c.post(user.url("/tasks"), json={"title": "Before"}, headers=user.headers)
            assert r.status_code == 201
            proxy.silent = True
            monkeypatch.setattr(todochat.db.engine, "PING_IF_IDLE_S", 0.0)
            started = time.monotonic()
            r = await c.post(user.url("/tasks"), json={"title": "During"}, headers=user.headers)
            elapsed = time.monotonic() - started
            assert r.status_code == 503
            assert r.json() == {"detail": DB_DOWN}
            # The ping's 2 s, then each retry's 1 s connect timeout: seconds, not minutes.
            assert todochat.db.engine.PING_TIMEOUT_S <= elapsed < 10
            proxy.silent = False
            r = await c.post(user.url("/tasks"), json={"title": "After"}, headers=user.headers)
            assert r.status_code == 201
            r = await c.get(user.url("/tasks"), headers=user.headers)
            assert sorted(t["title"] for t in r.json()) == ["After", "Before"]
    finally:
        await running.stop()
        await proxy.stop()


@asynccontextmanager
async def _service_role(
    pg_url: str, options: str
) -> AsyncIterator[tuple[str, str, asyncpg.Connection]]:
    """A role of its own for the service (`CREATE ROLE ... {options}`) with the rights on the
    tables: yields the database URL as that role, the role's name, and an admin connection to
    change the role with. Dropped afterwards, its connections terminated."""
    role = f"todochat_role_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_asyncpg_dsn(pg_url))
    try:
        await admin.execute(f'CREATE ROLE "{role}" {options}')
        await admin.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        await admin.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        yield pg_url.replace("://postgres@", f"://{role}@", 1), role, admin
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        await admin.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
        await admin.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_too_many_connections_is_a_503_and_passes(pg_url) -> None:
    """PostgreSQL refusing a connection for lack of slots (SQLSTATE 53300, "too many clients")
    is the database being unavailable: 503 with Retry-After, nothing half-done, and the same
    request succeeds once a slot is free."""
    async with _service_role(pg_url, "LOGIN CONNECTION LIMIT 1") as (limited_url, _role, _admin):
        # The role's one slot, taken by someone else.
        holder = await asyncpg.connect(_asyncpg_dsn(limited_url))
        running = await start_app(make_settings(limited_url))
        user = User()
        try:
            async with running.client() as c:
                for method, path, body in (
                    ("POST", "/tasks", {"title": "No slot"}),
                    ("POST", "/chat", {"message": "add a task to buy milk"}),
                    ("GET", "/tasks", None),
                ):
                    started = time.monotonic()
                    r = await c.request(method, user.url(path), json=body, headers=user.headers)
                    assert r.status_code == 503, (path, r.text)
                    assert time.monotonic() - started < 5  # refused at once, not a pool timeout
                    assert r.json() == {"detail": DB_DOWN}
                    assert r.headers["Retry-After"]
                await holder.close()
                r = await c.post(user.url("/tasks"), json={"title": "Slot"}, headers=user.headers)
                assert r.status_code == 201, r.text
                titles = [
                    t["title"]
                    for t in (await c.get(user.url("/tasks"), headers=user.headers)).json()
                ]
                assert titles == ["Slot"]
        finally:
            await running.stop()
            if not holder.is_closed():
                await holder.close()


async def test_a_refused_login_is_a_503_not_an_internal_error(pg_url) -> None:
    """A database that refuses the service's login (a role disabled, a password rotated:
    SQLSTATE class 28) is the database being unavailable to it, like a refused connection:
    503 with Retry-After and no "unhandled error", until the login works again."""
    async with _service_role(pg_url, "LOGIN") as (url, role, admin):
        running = await start_app(make_settings(url))
        user = User()
        try:
            with LogCapture() as logs:
                async with running.client() as c:
                    r = await c.post(
                        user.url("/tasks"), json={"title": "Before"}, headers=user.headers
                    )
                    assert r.status_code == 201, r.text
                    await admin.execute(f'ALTER ROLE "{role}" NOLOGIN')
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        role,
                    )
                    for method, path, body in (
                        ("POST", "/tasks", {"title": "Refused"}),
                        ("POST", "/chat", {"message": "add a task to buy milk"}),
                        ("GET", "/tasks", None),
                    ):
                        r = await c.request(method, user.url(path), json=body, headers=user.headers)
                        assert r.status_code == 503, (path, r.text)
                        assert r.json() == {"detail": DB_DOWN}
                        assert r.headers["Retry-After"]
                    assert not [r for r in logs.records() if r["message"] == "unhandled error"]
                    await admin.execute(f'ALTER ROLE "{role}" LOGIN')
                    r = await c.post(
                        user.url("/tasks"), json={"title": "After"}, headers=user.headers
                    )
                    assert r.status_code == 201, r.text
                    titles = [
                        t["title"]
                        for t in (await c.get(user.url("/tasks"), headers=user.headers)).json()
                    ]
                    assert titles == ["After", "Before"]
        finally:
            await running.stop()
