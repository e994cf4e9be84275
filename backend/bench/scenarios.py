"""The six scenarios of issue 6, `parse` (issue 11, bench/parse.py) and `stream` (issue 13).
Each returns one JSON-able dict: the
common fields (`scenario`, `concurrency`, `turns`, `errors`, `p50_ms`, `p95_ms`, `p99_ms`,
`turns_per_s`), the figures of its target under `target`, and the context needed to judge them
(CPU per turn, database connections, how busy the machine was)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt

from bench.harness import (
    BenchDatabase,
    ConnectionSampler,
    CpuMeter,
    FakeUpstreamProcess,
    PgStatement,
    PgStatementLog,
    ServerProcess,
    load_average,
)
from bench.loadgen import Connection, RunResult, Step, bearer, closed_loop, json_body, percentile
from bench.parse import parse
from bench.stream_turns import StreamTurn, StreamUser, first_text, is_complete

# A realistic offline conversation: add, look, complete by name, delete by name. Each user
# ends a cycle with no task left, so lists stay short however long the run (soak).
# Tools per cycle: 1 + 1 + 2 + 2 (by-name actions list first); model steps: 2 + 2 + 3 + 3.
OFFLINE_CYCLE = (
    "Add a task to buy groceries",
    "What's pending?",
    "Mark the groceries task as done",
    "Delete the groceries task",
)
# A conversation is resumed for this many turns, then the user starts a new one.
TURNS_PER_CONVERSATION = 8
# The `stream` scenario's upstream (issue 13): the first piece of text 300 ms after the
# request, then the others 20 ms apart, 20 in all.
STREAM_FIRST_TOKEN_S = 0.3
STREAM_TOKEN_GAP_S = 0.02
STREAM_REPLY_WORDS = 20
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# `python -m bench --concurrency N`: another concurrency for `overhead`, `capacity` and
# `stream`, to see how the overhead grows with load. Published figures use the issue's.
OVERRIDES: dict[str, int] = {}


@dataclass
class ChatUser:
    id: str
    headers: bytes


def make_users(n: int, secret: str) -> list[ChatUser]:
    users = []
    for _ in range(n):
        user_id = f"bench-{uuid.uuid4().hex[:12]}"
        token = jwt.encode(
            {"sub": user_id, "exp": int(time.time()) + 24 * 3600}, secret, algorithm="HS256"
        )
        users.append(ChatUser(user_id, bearer(token)))
    return users


def chat_user(
    user: ChatUser,
    message: Callable[[int], str],
    *,
    per_conversation: int = TURNS_PER_CONVERSATION,
    conversation_id: Callable[[int], int | None] | None = None,
) -> Step:
    """One virtual user chatting: `message(i)` is its i-th message."""
    path = f"/api/{user.id}/chat"
    state: dict[str, Any] = {"i": 0, "cid": None}

    async def step(conn: Connection) -> tuple[int, bytes]:
        i = state["i"]
        state["i"] = i + 1
        if conversation_id is not None:
            state["cid"] = conversation_id(i)
        elif i % per_conversation == 0:
            state["cid"] = None
        payload: dict[str, Any] = {"message": message(i)}
        if state["cid"] is not None:
            payload["conversation_id"] = state["cid"]
        status, body = await conn.request(
            "POST", path, headers=user.headers, body=json_body(payload)
        )
        if status == 200 and state["cid"] is None and conversation_id is None:
            state["cid"] = json.loads(body)["conversation_id"]
        return status, body

    return step


def offline_message(i: int) -> str:
    return OFFLINE_CYCLE[i % len(OFFLINE_CYCLE)]


def common(name: str, concurrency: int, result: RunResult, cpu: CpuMeter | None) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": name, "concurrency": concurrency, **result.summary()}
    if result.errors_by_kind:
        out["errors_by_kind"] = result.errors_by_kind
    if cpu is not None and "end" in cpu.readings:
        d = cpu.between()
        turns = max(len(result.samples), 1)
        out["server_cpu_ms_per_turn"] = round(d["server"] / turns * 1000, 2)
        out["cpu_cores"] = {
            "server": round(d["server"] / d["t"], 2),
            "postgres_all": round(d["postgres"] / d["t"], 2),
            "fake_upstream": round(d["fake"] / d["t"], 2),
            "load_generator": round(d["client"] / d["t"], 2),
            "everything_else": round(max(d["other"], 0.0) / d["t"], 2),
        }
    return out


class Stack:
    """Bench database + server (+ fake upstream) for one scenario, torn down afterwards."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        fake_delay_s: float | None = None,
        fake: FakeUpstreamProcess | None = None,
        workers: int = WORKERS,
        pg_statements: bool = False,
    ) -> None:
        self.db = BenchDatabase()
        # PostgreSQL's own time per statement, for the scenarios that judge it: logging every
        # statement costs PostgreSQL CPU, so the others leave it off.
        self.pg_log = PgStatementLog(self.db) if pg_statements else None
        # `fake`: a fake upstream set up by the scenario (streamed answers); else one of
        # `fake_delay_s` per call, or none (the offline model).
        if fake is None and fake_delay_s is not None:
            fake = FakeUpstreamProcess(delay_s=fake_delay_s)
        self.fake = fake
        self.env = env
        self.workers = workers
        self.server: ServerProcess | None = None
        self.load_before = load_average()
        # Byte offsets of the server log at the measurement window's edges.
        self.log_marks: dict[str, int] = {}

    async def __aenter__(self) -> Stack:
        try:
            await self._start()
        except BaseException:
            # A part that did not start (a server that never came up) must not leave the
            # others running: `async with` calls no __aexit__ when __aenter__ raises.
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        await self.db.recreate()
        if self.pg_log is not None:
            # Before the server starts: only sessions opened afterwards log their statements.
            await self.pg_log.start()
        env = dict(self.env)
        if self.fake is not None:
            await self.fake.start()
            env.update(
                {
                    "MODEL_PROVIDER": "openai",
                    "OPENAI_API_KEY": "sk-bench-not-a-real-key",
                    "OPENAI_BASE_URL": self.fake.base_url,
                    "OPENAI_MODEL": "fake-model",
                }
            )
        else:
            env.setdefault("MODEL_PROVIDER", "offline")
        # Set before it starts, so that a server that fails to come up is still stopped.
        self.server = ServerProcess(database_url=self.db.app_url, workers=self.workers, env=env)
        await self.server.start()

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.server is not None:
                await self.server.stop()
            if self.fake is not None:
                await self.fake.stop()
        finally:
            try:
                # Dropping the database drops its settings too; reset them anyway, so a drop
                # that fails leaves no database logging every statement.
                if self.pg_log is not None:
                    await self.pg_log.stop()
            finally:
                await self.db.drop()

    @property
    def srv(self) -> ServerProcess:
        assert self.server is not None
        return self.server

    def meter(self, label: str, profile_s: float | None = None) -> CpuMeter:
        return CpuMeter(self.srv, self.fake, label=label, profile_s=profile_s)

    def machine(self) -> dict[str, Any]:
        return {"load_avg_1m_before": self.load_before, "load_avg_1m_after": load_average()}


async def _db_figures(
    stack: Stack, run: Callable[[], Awaitable[RunResult]]
) -> tuple[RunResult, dict[str, Any]]:
    """Run the load, and report the database connections it used."""
    before = await stack.db.counters()
    sampler = ConnectionSampler(stack.db).start()
    t0 = time.monotonic()
    try:
        result = await run()
    finally:
        await sampler.stop()
    elapsed = time.monotonic() - t0
    after = await stack.db.counters()
    return result, {
        "pg_connections_opened_per_s": round((after["sessions"] - before["sessions"]) / elapsed, 1),
        "pg_connections_max": max(sampler.samples, default=0),
        # Time PostgreSQL itself spent executing statements (pg_stat_database.active_time).
        "pg_active_ms": round(after["active_ms"] - before["active_ms"], 1),
    }


def _pool_timeouts(records: list[dict[str, Any]]) -> int:
    return sum(
        1
        for r in records
        if r.get("message") == "database unavailable" and r.get("error_type") == "TimeoutError"
    )


def _error_logs(records: list[dict[str, Any]]) -> int:
    return sum(1 for r in records if r.get("level") in ("ERROR", "CRITICAL"))


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


async def upstream_load(
    name: str,
    *,
    concurrency: int,
    delay_s: float,
    warmup_s: float,
    duration_s: float,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], RunResult]:
    """Chat turns against the fake upstream: each turn is `add_task`, then a reply."""
    async with Stack(env=env or {}, fake_delay_s=delay_s) as stack:
        assert stack.fake is not None
        users = make_users(concurrency, stack.srv.secret)
        steps = [
            chat_user(u, lambda i, n=n: f"Remember to water plant {n}-{i}")
            for n, u in enumerate(users)
        ]
        meter = stack.meter(name, duration_s)
        result, db = await _db_figures(
            stack,
            lambda: closed_loop(
                host="127.0.0.1",
                port=stack.srv.port,
                users=steps,
                warmup_s=warmup_s,
                # Arrivals spread over one turn's upstream time (two calls): steady traffic.
                ramp_s=2 * delay_s,
                duration_s=duration_s,
                mark=meter.read,
            ),
        )
        stats = await stack.fake.stats()
        records = stack.srv.log_records()
        out = common(name, concurrency, result, meter)
        calls_per_turn = stats["calls"] / max(result.all_completed, 1)
        out.update(db)
        out["upstream"] = {
            "delay_ms": delay_s * 1000,
            "calls_per_turn": round(calls_per_turn, 3),
            "service_ms_p50": stats["service_ms_p50"],
            "service_ms_p95": stats["service_ms_p95"],
        }
        out["pool_timeouts"] = _pool_timeouts(records)
        out["error_log_lines"] = _error_logs(records)
        out["machine"] = stack.machine()
        return out, result


async def overhead() -> dict[str, Any]:
    delay_s = 0.5
    out, result = await upstream_load(
        "overhead",
        concurrency=OVERRIDES.get("concurrency", 100),
        delay_s=delay_s,
        warmup_s=5,
        duration_s=20,
    )
    # The time spent upstream is what the upstream was asked to take: 2 calls x 500 ms. Any
    # time beyond it (the fake's own, the HTTP client's, queueing) counts as overhead.
    upstream_ms = out["upstream"]["calls_per_turn"] * delay_s * 1000
    over = sorted(x - upstream_ms for x in result.ok_latencies_ms)
    out["overhead_ms"] = {
        "p50": round(percentile(over, 50), 2),
        "p95": round(percentile(over, 95), 2),
        "p99": round(percentile(over, 99), 2),
    }
    p95 = out["overhead_ms"]["p95"]
    out["target"] = {
        "what": "p95 of (turn time - time upstream) <= 50 ms",
        "value": p95,
        "met": p95 <= 50 and out["errors"] == 0,
    }
    return out


async def capacity() -> dict[str, Any]:
    delay_s = 1.0
    concurrency = OVERRIDES.get("concurrency", 200)
    out, _result = await upstream_load(
        "capacity",
        concurrency=concurrency,
        delay_s=delay_s,
        warmup_s=6,
        duration_s=30,
        # The setup for this scenario, whatever the defaults are.
        env={"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "20"},
    )
    out["pool"] = "10 + 20"
    ideal = concurrency / (out["upstream"]["calls_per_turn"] * delay_s)
    ratio = out["turns_per_s"] / ideal
    out["ideal_turns_per_s"] = round(ideal, 1)
    out["target"] = {
        "what": "zero errors, zero pool time-outs, turns/s >= 90% of concurrency / turn time",
        "value": round(ratio, 3),
        "met": ratio >= 0.9 and out["errors"] == 0 and out["pool_timeouts"] == 0,
    }
    return out


async def _health_live(port: int, concurrency: int, duration_s: float) -> dict[str, Any]:
    """Requests/s of `GET /health/live`. Measured with wrk where it is installed: the asyncio
    client spends more CPU per request than this route does, so it would measure itself."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        proc = await asyncio.create_subprocess_exec(
            wrk,
            "-t2",
            f"-c{concurrency}",
            f"-d{int(duration_s)}s",
            "--latency",
            f"http://127.0.0.1:{port}/health/live",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        match = re.search(r"Requests/sec:\s+([\d.]+)", out.decode())
        if match:
            return {"rps": float(match.group(1)), "tool": "wrk"}

    async def step(conn: Connection) -> tuple[int, bytes]:
        return await conn.request("GET", "/health/live")

    result = await closed_loop(
        host="127.0.0.1",
        port=port,
        users=[step] * concurrency,
        warmup_s=1,
        duration_s=duration_s,
    )
    return {"rps": result.summary()["turns_per_s"], "tool": "bench.loadgen"}


async def offline_load(
    name: str,
    *,
    concurrency: int = 32,
    env: dict[str, str] | None = None,
    warmup_s: float = 3,
    duration_s: float = 15,
    total: int | None = None,
    on_complete: Callable[[Stack, int], None] | None = None,
    after: Callable[[Stack, RunResult, dict[str, Any]], Awaitable[None]] | None = None,
    pg_statements: bool = False,
) -> dict[str, Any]:
    async with Stack(env=env or {}, pg_statements=pg_statements) as stack:
        users = make_users(concurrency, stack.srv.secret)
        steps = [chat_user(u, offline_message) for u in users]
        meter = stack.meter(name, None if total else duration_s)
        log_start = stack.srv.log_size()
        stack.log_marks["run_start"] = log_start

        def mark(name: str) -> None:
            meter.read(name)
            stack.log_marks[name] = stack.srv.log_size()
            if stack.pg_log is not None:
                stack.pg_log.mark(name)

        result, db = await _db_figures(
            stack,
            lambda: closed_loop(
                host="127.0.0.1",
                port=stack.srv.port,
                users=steps,
                warmup_s=warmup_s,
                duration_s=None if total else duration_s,
                total=total,
                mark=mark,
                on_complete=(lambda n: on_complete(stack, n)) if on_complete else None,
            ),
        )
        out = common(name, concurrency, result, meter)
        out.update(db)
        records = stack.srv.log_records(log_start)
        out["pool_timeouts"] = _pool_timeouts(records)
        out["error_log_lines"] = _error_logs(records)
        if after is not None:
            await after(stack, result, out)
        out["machine"] = stack.machine()
        return out


async def offline() -> dict[str, Any]:
    async def live(stack: Stack, result: RunResult, out: dict[str, Any]) -> None:
        health = await _health_live(stack.srv.port, 32, 5)
        out["health_live_rps"] = health["rps"]
        out["health_live_measured_with"] = health["tool"]

    out = await offline_load("offline", after=live)
    out["target"] = {
        "what": "turns/s >= 100 (offline model, concurrency 32, all cores)",
        "value": out["turns_per_s"],
        "met": out["turns_per_s"] >= 100 and out["errors"] == 0,
    }
    return out


def _distribution(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 3),
        "p95_ms": round(percentile(ordered, 95), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
    }


async def db() -> dict[str, Any]:
    """The `offline` load, with two figures for each query's database time:

    - PostgreSQL's own (`pg_statement_*`, judged): every statement's duration as PostgreSQL
      logs it for the bench database (log_min_duration_statement = 0): parse + bind +
      execute of one statement. COMMIT counts (it is where a write waits for the WAL to
      reach the disk); BEGIN and ROLLBACK, microseconds of bookkeeping, are reported by kind
      but not judged, nor are the pool's pings (BEGIN, ";", ROLLBACK on a checkout of an idle
      connection, P2): they would only pull the percentiles down.
    - The server's (`*_from_server`, DB_SLOW_MS=0): from sending a query to having its rows,
      as SQLAlchemy's cursor events see it, BEGIN and COMMIT not included. Under this load
      each worker's event loop is saturated, so it includes the time the answer, already
      there, waits for the loop to get round to it: the turn's cost, not the database's.

    When PostgreSQL's log cannot be read, `pg_log` says why and the server's figure is judged.
    """
    queries: list[dict[str, Any]] = []
    run_queries = [0]
    statements: list[PgStatement] = []

    async def collect(stack: Stack, result: RunResult, out: dict[str, Any]) -> None:
        run_queries[0] = sum(
            1
            for r in stack.srv.log_records(stack.log_marks.get("run_start", 0))
            if r.get("message") == "slow query"
        )
        # Only the window's queries: the log offsets taken at the window's edges.
        marks = stack.log_marks
        queries.extend(
            r
            for r in stack.srv.log_records(marks.get("start", 0), marks.get("end"))
            if r.get("message") == "slow query"
        )
        assert stack.pg_log is not None
        statements.extend(stack.pg_log.statements())
        if stack.pg_log.unavailable is None:
            out["pg_log"] = {
                "path": str(stack.pg_log.path),
                "window_bytes": stack.pg_log.window_bytes(),
            }
        else:
            out["pg_log"] = {"unavailable": stack.pg_log.unavailable}

    out = await offline_load("db", env={"DB_SLOW_MS": "0"}, after=collect, pg_statements=True)
    turns = max(out["turns"], 1)

    app_statements = [st for st in statements if not st.ping]
    work = [st for st in app_statements if st.kind not in ("BEGIN", "ROLLBACK")]
    if work:
        pg = _distribution([st.ms for st in work])
        by_kind: dict[str, list[float]] = {}
        for st in app_statements:
            by_kind.setdefault(st.kind, []).append(st.ms)
        out["pg_statements"] = pg["n"]
        out["pg_statements_per_turn"] = round(pg["n"] / turns, 2)
        out["pg_statement_p50_ms"] = pg["p50_ms"]
        out["pg_statement_p95_ms"] = pg["p95_ms"]
        out["pg_statement_p99_ms"] = pg["p99_ms"]
        out["pg_statement_mean_ms"] = round(sum(st.ms for st in work) / pg["n"], 3)
        out["pg_by_statement"] = {k: _distribution(v) for k, v in sorted(by_kind.items())}
        pings = [st.ms for st in statements if st.ping]
        out["pg_pool_ping_statements"] = len(pings)
        out["pg_pool_ping_ms_total"] = round(sum(pings), 1)
        # Had every statement counted (BEGIN, ROLLBACK and pings too): what the p95 would read.
        out["pg_statement_p95_ms_all"] = round(
            percentile(sorted(st.ms for st in statements), 95), 3
        )

    times = sorted(float(q["duration_ms"]) for q in queries)
    by_statement: dict[str, list[float]] = {}
    for q in queries:
        by_statement.setdefault(q.get("statement", "?"), []).append(float(q["duration_ms"]))
    out["queries_from_server"] = len(times)
    out["queries_per_turn_from_server"] = round(len(times) / turns, 2)
    # PostgreSQL's execution time over the whole run (pg_stat_database.active_time, BEGIN and
    # COMMIT included) per query the server logged over the same run: a cross-check of the
    # log's figures that needs no access to PostgreSQL's log.
    out["pg_execution_ms_per_query_mean"] = round(out["pg_active_ms"] / max(run_queries[0], 1), 3)
    out["query_p50_ms_from_server"] = round(percentile(times, 50), 2)
    out["query_p95_ms_from_server"] = round(percentile(times, 95), 2)
    out["query_p99_ms_from_server"] = round(percentile(times, 99), 2)
    out["by_statement_from_server"] = {
        k: {"n": len(v), "p95_ms": round(percentile(sorted(v), 95), 2)}
        for k, v in sorted(by_statement.items())
    }

    if work:
        what = (
            "p95 of PostgreSQL's own time per statement (parse + bind + execute; queries and "
            "COMMIT, not BEGIN/ROLLBACK or pool pings; from its log) under the offline load <= 5 ms"
        )
        value = out["pg_statement_p95_ms"]
    else:
        what = (
            "p95 of each query's time as the server saw it, event-loop wait included "
            "(PostgreSQL's log unreadable, see pg_log) under the offline load <= 5 ms"
        )
        value = out["query_p95_ms_from_server"]
    out["target"] = {"what": what, "value": value, "met": value <= 5}
    return out


async def soak() -> dict[str, Any]:
    total = 20_000
    rss: dict[int, int] = {}

    def sample(stack: Stack, n: int) -> None:
        if n % 1000 == 0:
            rss[n] = stack.srv.rss_bytes()

    async def settle(stack: Stack, result: RunResult, out: dict[str, Any]) -> None:
        await asyncio.sleep(1)
        rss[-1] = stack.srv.rss_bytes()

    out = await offline_load("soak", warmup_s=0, total=total, on_complete=sample, after=settle)
    first = rss.get(1000, 0)
    final = rss.get(-1, 0)
    mib = 1024 * 1024
    out["rss_mib_after_1000"] = round(first / mib, 1)
    out["rss_mib_after_run"] = round(final / mib, 1)
    out["rss_mib_every_1000"] = [round(rss[k] / mib, 1) for k in sorted(rss) if k > 0]
    ratio = final / first if first else float("inf")
    out["target"] = {
        "what": "resident memory after the run <= 1.2x after the first 1,000 turns; no error",
        "value": round(ratio, 3),
        "met": ratio <= 1.2 and out["errors"] == 0 and out["turns"] == total,
    }
    return out


async def _seed_history(conn: asyncpg.Connection, user_id: str, messages: int) -> int:
    """A conversation of `messages` stored messages, as real turns leave them: the user asks,
    the assistant answers with the add_task call it made."""
    cid: int = await conn.fetchval(
        "INSERT INTO conversations (user_id, created_at, updated_at) "
        "VALUES ($1, now(), now()) RETURNING id",
        user_id,
    )
    rows = []
    for i in range(messages):
        if i % 2 == 0:
            rows.append((cid, user_id, "user", f"Add a task to call supplier {i // 2}", None))
        else:
            title = f"Call supplier {i // 2}"
            call = {
                "id": f"call_seed_{cid}_{i}",
                "name": "add_task",
                "arguments": {"title": title},
                "result": {"task_id": 1000 + i, "status": "created", "title": title},
            }
            rows.append((cid, user_id, "assistant", f"Added '{title}'.", json.dumps([call])))
    await conn.executemany(
        "INSERT INTO messages (conversation_id, user_id, role, content, tool_calls, "
        "created_at) VALUES ($1, $2, $3, $4, $5::jsonb, now())",
        rows,
    )
    return cid


async def long_history() -> dict[str, Any]:
    """Sequential turns, alternating between a conversation of 5,000 messages and fresh
    conversations of 10 (one per turn, so each has exactly 10 when it is used)."""
    turns = 150
    warmup = 20
    async with Stack(env={}) as stack:
        # Two users living the same cycle, so both see the same task lists.
        long_user, short_user = make_users(2, stack.srv.secret)
        seed = await asyncpg.connect(stack.db.dsn)
        try:
            long_cid = await _seed_history(seed, long_user.id, 5000)
            short_cids = [
                await _seed_history(seed, short_user.id, 10) for _ in range(turns + warmup)
            ]
            # A bulk load leaves the table without statistics until autovacuum's next pass
            # (a minute away); without them PostgreSQL plans the history read as a bitmap scan
            # plus a sort of all 5,000 rows, a plan no database that has been running gets.
            await seed.execute("ANALYZE conversations, messages")
        finally:
            await seed.close()
        long_step = chat_user(long_user, offline_message, conversation_id=lambda i: long_cid)
        short_step = chat_user(short_user, offline_message, conversation_id=lambda i: short_cids[i])
        conn = Connection("127.0.0.1", stack.srv.port)
        lat: dict[str, list[float]] = {"long": [], "short": []}
        errors = 0
        meter = stack.meter("long-history")
        try:
            for i in range(turns + warmup):
                if i == warmup:
                    meter.read("start")
                for kind, step in (("long", long_step), ("short", short_step)):
                    t0 = time.perf_counter()
                    status, _ = await step(conn)
                    elapsed = (time.perf_counter() - t0) * 1000
                    if status != 200:
                        errors += 1
                    elif i >= warmup:
                        lat[kind].append(elapsed)
            meter.read("end")
        finally:
            conn.close()
        d = meter.between()
        long_ms, short_ms = sorted(lat["long"]), sorted(lat["short"])
        all_ms = sorted(long_ms + short_ms)
        ratio = percentile(long_ms, 95) / percentile(short_ms, 95)
        out: dict[str, Any] = {
            "scenario": "long-history",
            "concurrency": 1,
            "turns": len(all_ms) + errors,
            "errors": errors,
            "p50_ms": round(percentile(all_ms, 50), 2),
            "p95_ms": round(percentile(all_ms, 95), 2),
            "p99_ms": round(percentile(all_ms, 99), 2),
            "turns_per_s": round(len(all_ms) / d["t"], 1),
            "long_5000": {
                "p50_ms": round(percentile(long_ms, 50), 2),
                "p95_ms": round(percentile(long_ms, 95), 2),
            },
            "short_10": {
                "p50_ms": round(percentile(short_ms, 50), 2),
                "p95_ms": round(percentile(short_ms, 95), 2),
            },
            "server_cpu_ms_per_turn": round(d["server"] / max(len(all_ms), 1) * 1000, 2),
            "machine": stack.machine(),
        }
        out["target"] = {
            "what": "p95 turn time, 5,000-message conversation <= 1.2x a 10-message one",
            "value": round(ratio, 3),
            "met": ratio <= 1.2 and errors == 0,
        }
        return out


def _ms(values: list[float], *qs: float) -> dict[str, float]:
    """Percentiles (nearest rank) of seconds, in milliseconds; `max` for q = 100."""
    ordered = sorted(values)
    return {("max" if q == 100 else f"p{q:g}"): round(percentile(ordered, q) * 1000, 2) for q in qs}


async def stream() -> dict[str, Any]:
    """Streamed turns (`POST /chat/stream`) against a fake upstream that streams like a model:
    each turn is an `add_task` call (answered at once), then a reply of STREAM_REPLY_WORDS
    pieces, the first STREAM_FIRST_TOKEN_S after the request, then one every
    STREAM_TOKEN_GAP_S. Judged: the client's wait for its first text-delta beyond the
    upstream's own time before its first piece (both calls, as the fake recorded them)."""
    concurrency = OVERRIDES.get("concurrency", 50)
    warmup_s, duration_s = 5.0, 20.0
    fake = FakeUpstreamProcess(
        delay_s=0.0,
        first_token_s=STREAM_FIRST_TOKEN_S,
        token_gap_s=STREAM_TOKEN_GAP_S,
        reply_words=STREAM_REPLY_WORDS,
    )
    async with Stack(env={}, fake=fake) as stack:
        users = [
            StreamUser(
                user_id=u.id,
                headers=u.headers,
                # Unique per turn: the fake's records of a turn are found by its message.
                message=functools.partial("Stream turn {}-{}".format, n),
                per_conversation=TURNS_PER_CONVERSATION,
            )
            for n, u in enumerate(make_users(concurrency, stack.srv.secret))
        ]
        meter = stack.meter("stream", duration_s)
        result, db = await _db_figures(
            stack,
            lambda: closed_loop(
                host="127.0.0.1",
                port=stack.srv.port,
                users=list(users),
                warmup_s=warmup_s,
                # Arrivals spread over one reply's upstream time, as in `overhead`.
                ramp_s=STREAM_FIRST_TOKEN_S + (STREAM_REPLY_WORDS - 1) * STREAM_TOKEN_GAP_S,
                duration_s=duration_s,
                check=is_complete,
                mark=meter.read,
                details=lambda i: users[i].last,
            ),
        )
        calls: dict[str, list[dict[str, Any]]] = {}
        for record in await fake.streams():
            calls.setdefault(record["user"], []).append(record)
        records = stack.srv.log_records()
        out = common("stream", concurrency, result, meter)
        out.update(db)

    turns = [s.extra for s in result.samples if s.ok and isinstance(s.extra, StreamTurn)]
    parts = [f for t in turns if (f := first_text(t, calls.get(t.message, []))) is not None]
    overhead_s = [f.overhead for f in parts]
    forwarding = [x for f in parts for x in f.forwarding]
    deltas = [len(t.deltas) for t in turns]
    out["turns_measured"] = len(parts)
    # Turns that streamed to their end but whose first text cannot be timed (no text, or no
    # upstream record of it): the target is not met while there is one.
    out["turns_not_timed"] = len(turns) - len(parts)
    out["first_text_overhead_ms"] = _ms(overhead_s, 50, 95, 99, 100)
    out["first_text_ms"] = {
        "client": _ms([f.client for f in parts], 50, 95),
        "upstream": _ms([f.upstream for f in parts], 50, 95),
        # Had the upstream's time been taken as what it was asked to take.
        "client_minus_nominal": _ms([f.client - STREAM_FIRST_TOKEN_S for f in parts], 50, 95),
    }
    # The overhead taken apart (percentiles of each part: they do not add up).
    out["first_text_overhead_parts_ms"] = {
        "to_first_upstream_call": _ms([f.to_first_call for f in parts], 50, 95),
        "between_upstream_calls": _ms([f.between_calls for f in parts], 50, 95),
        "first_piece_to_client": _ms([f.to_client for f in parts], 50, 95),
    }
    out["text_piece_forwarding_ms"] = _ms(forwarding, 50, 95, 100)
    out["chunk_gaps_ms"] = {
        "client": _ms([g for f in parts for g in f.client_gaps], 50, 95, 100),
        "upstream": _ms([g for f in parts for g in f.upstream_gaps], 50, 95, 100),
    }
    out["text_deltas_per_turn"] = {"min": min(deltas, default=0), "max": max(deltas, default=0)}
    out["upstream"] = {
        "first_token_ms": STREAM_FIRST_TOKEN_S * 1000,
        "token_gap_ms": STREAM_TOKEN_GAP_S * 1000,
        "reply_words": STREAM_REPLY_WORDS,
        "calls_per_turn": round(
            sum(len(calls.get(t.message, [])) for t in turns) / max(len(turns), 1), 3
        ),
    }
    out["pool_timeouts"] = _pool_timeouts(records)
    out["error_log_lines"] = _error_logs(records)
    out["machine"] = stack.machine()
    p95 = out["first_text_overhead_ms"]["p95"]
    out["target"] = {
        "what": "p95 of (first text-delta at the client - upstream's time to its first piece) "
        "<= 50 ms, no error",
        "value": p95,
        "met": p95 <= 50 and out["errors"] == 0 and out["turns_not_timed"] == 0,
    }
    return out


SCENARIOS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "overhead": overhead,
    "capacity": capacity,
    "offline": offline,
    "long-history": long_history,
    "soak": soak,
    "db": db,
    "stream": stream,
    "parse": parse,
}
