"""The service behind a real PgBouncer (Debian's 1.18 where .ci/run installs it).

Transaction pooling with `DB_PREPARED_STATEMENTS=false` (README, "Behind PgBouncer"): start-up
and migrations of `todochat serve`, the task routes under concurrency, a chat turn, idempotent
retries, the health check, and server connections terminated under load. Session pooling with
the defaults. And the control that shows the pooler in these tests really is in transaction
mode: with prepared statements left on, requests fail as issue 15 found.

PgBouncer only stands in front of PostgreSQL, so these tests run on PostgreSQL alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from tests.conftest import (
    PG_ADMIN_URL,
    RunningApp,
    User,
    _asyncpg_dsn,
    create_pg_database,
    drop_pg_database,
    make_settings,
    start_app,
)
from tests.pgbouncer import PgBouncer, PoolMode
from tests.served import ServedApp
from todochat.migrate import migrate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transaction_pooler() -> Iterator[PgBouncer]:
    # Fewer server connections than the app's pool: client connections must share them.
    bouncer = PgBouncer("transaction", pool_size=3).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def _app_behind(bouncer: PgBouncer, pg_url: str, **settings: object) -> RunningApp:
    """Migrations and the app, both through the pooler."""
    config = make_settings(bouncer.url(pg_url), db_pool_size=8, **settings)
    await asyncio.to_thread(migrate, settings=config)
    return await start_app(config)


async def _server_pids(pg_url: str) -> list[int]:
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            pg_url.rsplit("/", 1)[1],
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def _terminate_all(pg_url: str) -> int:
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
    try:
        killed: int = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            pg_url.rsplit("/", 1)[1],
        )
    finally:
        await conn.close()
    return killed


async def _count(pg_url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(_asyncpg_dsn(pg_url))
    try:
        value: int = await conn.fetchval(sql, *args)
    finally:
        await conn.close()
    return value


def test_serve_migrates_and_answers_behind_pgbouncer_in_transaction_mode(
    transaction_pooler: PgBouncer, pg_url: str, tmp_path: Path
) -> None:
    """`todochat serve` as an operator starts it: migrations, then requests, all via PgBouncer."""
    served = ServedApp(
        tmp_path, transaction_pooler.url(pg_url), DB_PREPARED_STATEMENTS="false"
    ).start()
    user = User()
    try:
        with httpx.Client(base_url=served.base_url, timeout=30) as client:
            assert client.get("/health").json()["database"]["status"] == "ok"
            created = client.post(
                user.url("/tasks"), json={"title": "Via the pooler"}, headers=user.headers
            )
            assert created.status_code == 201, created.text
            listed = client.get(user.url("/tasks"), headers=user.headers)
            assert [t["title"] for t in listed.json()] == ["Via the pooler"]
    finally:
        served.stop()
    assert "Traceback" not in served.log(), served.log()
    # The one connection string points at PgBouncer: PostgreSQL saw only its server connections.
    assert "already exists" not in served.log()


async def test_task_routes_chat_and_retries_behind_pgbouncer_in_transaction_mode(
    transaction_pooler: PgBouncer, pg_url: str
) -> None:
    running = await _app_behind(transaction_pooler, pg_url, db_prepared_statements=False)
    user = User()
    try:
        async with running.client() as client:
            # More concurrent units of work than server connections: transactions of one client
            # connection land on different server connections.
            titles = [f"Errand {i}" for i in range(40)]
            created = await asyncio.gather(
                *(
                    client.post(user.url("/tasks"), json={"title": t}, headers=user.headers)
                    for t in titles
                )
            )
            assert [r.status_code for r in created] == [201] * len(titles)
            # The connection formula behind a pooler (docs/SCALING.md): PostgreSQL sees at most
            # PgBouncer's pool, whatever the app's pool (8 here) and the concurrency (40).
            assert 1 <= len(await _server_pids(pg_url)) <= transaction_pooler.pool_size
            task_id = created[0].json()["id"]
            assert (
                await client.patch(user.url(f"/tasks/{task_id}/complete"), headers=user.headers)
            ).json()["completed"]
            updated = await client.put(
                user.url(f"/tasks/{task_id}"), json={"title": "Renamed"}, headers=user.headers
            )
            assert updated.json()["title"] == "Renamed"
            assert (
                await client.delete(
                    user.url(f"/tasks/{created[1].json()['id']}"), headers=user.headers
                )
            ).status_code == 204
            listed = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
            assert len(listed.json()) == len(titles) - 1

            turn = await client.post(
                user.url("/chat"), json={"message": "add buy milk"}, headers=user.headers
            )
            assert turn.status_code == 200, turn.text
            follow_up = await client.post(
                user.url("/chat"),
                json={
                    "message": "show my tasks",
                    "conversation_id": turn.json()["conversation_id"],
                },
                headers=user.headers,
            )
            assert follow_up.status_code == 200, follow_up.text
            assert "milk" in follow_up.json()["response"].lower()

            keyed = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
            body = {"message": "add call the plumber"}
            first = await client.post(user.url("/chat"), json=body, headers=keyed)
            again = await client.post(user.url("/chat"), json=body, headers=keyed)
            assert first.status_code == again.status_code == 200
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == first.json()

            health = await client.get("/health")
            assert health.status_code == 200 and health.json()["database"]["status"] == "ok"
    finally:
        await running.stop()
    plumber = await _count(
        pg_url,
        "SELECT count(*) FROM tasks WHERE user_id = $1 AND title ILIKE $2",
        user.id,
        "%plumber%",
    )
    assert plumber == 1


async def test_terminated_server_connections_behind_pgbouncer_lose_and_double_nothing(
    transaction_pooler: PgBouncer, pg_url: str
) -> None:
    """PostgreSQL terminates PgBouncer's server connections again and again while keyed writes
    run; clients retry with their key. Every write ends acknowledged, and stored once."""
    running = await _app_behind(transaction_pooler, pg_url, db_prepared_statements=False)
    user = User()
    stop = asyncio.Event()
    killed = 0

    async def terminate() -> None:
        nonlocal killed
        while not stop.is_set():
            killed += await _terminate_all(pg_url)
            await asyncio.sleep(0.05)

    async def write(client: httpx.AsyncClient, title: str) -> None:
        headers = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
        for _ in range(100):
            try:
                r = await client.post(user.url("/tasks"), json={"title": title}, headers=headers)
            except httpx.TransportError:
                continue
            if r.status_code == 201:
                return
            assert r.status_code in (503, 409), r.text
            assert "Retry-After" in r.headers
            await asyncio.sleep(0.05)
        raise AssertionError(f"{title} was never acknowledged")

    titles = [f"Stored once {i}" for i in range(30)]
    try:
        async with running.client() as client:
            storm = asyncio.create_task(terminate())
            try:
                for start in range(0, len(titles), 6):
                    await asyncio.gather(*(write(client, t) for t in titles[start : start + 6]))
            finally:
                stop.set()
                await storm
            assert (await client.get("/health")).status_code == 200
    finally:
        await running.stop()
    assert killed > 0
    for title in titles:
        stored = await _count(
            pg_url, "SELECT count(*) FROM tasks WHERE user_id = $1 AND title = $2", user.id, title
        )
        assert stored == 1, title


async def test_the_pools_ping_of_an_idle_connection_works_behind_pgbouncer(
    transaction_pooler: PgBouncer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every checkout pings (as after 10 s idle), outside any transaction, through the pooler."""
    import todochat.db.engine

    monkeypatch.setattr(todochat.db.engine, "PING_IF_IDLE_S", 0.0)
    running = await _app_behind(transaction_pooler, pg_url, db_prepared_statements=False)
    opened: list[object] = []
    # A failed ping replaces every pooled connection: then the app would keep reconnecting.
    event.listen(
        running.app.state.database.engine.sync_engine,
        "connect",
        lambda dbapi_connection, record: opened.append(record),
    )
    user = User()
    try:
        async with running.client() as client:
            for i in range(30):
                r = await client.post(
                    user.url("/tasks"), json={"title": f"I{i}"}, headers=user.headers
                )
                assert r.status_code == 201, r.text
            listed = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
    finally:
        await running.stop()
    assert len(listed.json()) == 30
    # Measured without a pooler: 2 connections for these 30 requests; with a ping that fails
    # (its time-out set to nothing), 31.
    assert len(opened) <= 3


@pytest.mark.parametrize("mode", ["session"])
async def test_session_pooling_works_with_the_defaults(mode: PoolMode, pg_url: str) -> None:
    bouncer = PgBouncer(mode, pool_size=10).start()
    try:
        running = await _app_behind(bouncer, pg_url)
        user = User()
        try:
            async with running.client() as client:
                created = await asyncio.gather(
                    *(
                        client.post(
                            user.url("/tasks"), json={"title": f"S{i}"}, headers=user.headers
                        )
                        for i in range(20)
                    )
                )
                assert {r.status_code for r in created} == {201}
                turn = await client.post(
                    user.url("/chat"), json={"message": "list my tasks"}, headers=user.headers
                )
                assert turn.status_code == 200, turn.text
        finally:
            await running.stop()
        # Every server connection PostgreSQL saw came through PgBouncer.
        assert len(await _server_pids(pg_url)) <= 10
    finally:
        bouncer.stop()


async def test_prepared_statements_fail_in_transaction_mode(
    transaction_pooler: PgBouncer, pg_url: str
) -> None:
    """The control: the pooler of these tests really pools by transaction, so left on, asyncpg's
    named statements collide (the failure issue 15 reported) and the setting is what fixes it."""
    config = make_settings(transaction_pooler.url(pg_url), db_prepared_statements=False)
    await asyncio.to_thread(migrate, settings=config)
    user = User()
    failures = 0
    try:
        running = await start_app(make_settings(transaction_pooler.url(pg_url), db_pool_size=8))
    except Exception:
        failures += 1  # start-up itself failed, as in the issue
    else:
        try:
            async with running.client() as client:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            user.url("/tasks"), json={"title": f"P{i}"}, headers=user.headers
                        )
                        for i in range(40)
                    )
                )
            failures += sum(r.status_code >= 500 for r in answers)
        finally:
            await running.stop()
    assert failures > 0
