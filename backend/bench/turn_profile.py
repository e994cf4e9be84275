"""Where the time of one chat turn goes, on the offline model, in-process.

Runs sequential chat turns through the real app (ASGI transport, real database, offline model,
the Agents SDK Runner, the in-process MCP tools) and splits each turn into: database (every
query, timed by SQLAlchemy cursor events), the model (OfflineModel.get_response), the SDK
(Runner time minus model and tool calls), the MCP tool layer without its queries, and the rest
(HTTP, auth, validation, persistence code outside queries). Sequential turns make the global
accounting exact. Prints one JSON object.

    python -m bench.turn_profile [--turns 400] [--database-url URL | --postgres] [--openai]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from todochat.config import Settings
from todochat.main import create_app
from todochat.migrate import migrate

MESSAGES = [
    "Add a task to buy groceries",
    "what's pending?",
    "mark it as done",
    "add call mom to my list",
    "rename it to Call mom tonight",
    "show me all my tasks",
    "delete the groceries task",
]


class Clock:
    def __init__(self) -> None:
        self.db = 0.0
        self.db_in_tools = 0.0
        self.model = 0.0
        self.tools = 0.0
        self.runner = 0.0
        self.in_tool = False
        self.queries = 0


def time_queries(app: Any, record: Callable[[float], None]) -> None:
    """Call `record(seconds)` for every query the app's engine runs (sent to rows back)."""
    from sqlalchemy import event

    engine = app.state.database.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Any, *_: Any) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: Any, *_: Any) -> None:
        record(time.perf_counter() - conn.info.pop("bench_t"))


def instrument(app: Any, clock: Clock) -> None:
    runtime = app.state.agent_runtime

    def _query(elapsed: float) -> None:
        clock.db += elapsed
        clock.queries += 1
        if clock.in_tool:
            clock.db_in_tools += elapsed

    time_queries(app, _query)

    model = runtime.agent.model
    original_get = model.get_response

    async def timed_get(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return await original_get(*args, **kwargs)
        finally:
            clock.model += time.perf_counter() - t

    model.get_response = timed_get

    original_call = runtime.tools.call_tool

    async def timed_call(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        clock.in_tool = True
        try:
            return await original_call(*args, **kwargs)
        finally:
            clock.in_tool = False
            clock.tools += time.perf_counter() - t

    runtime.tools.call_tool = timed_call

    original_run = runtime.run_turn

    async def timed_run(**kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return await original_run(**kwargs)
        finally:
            clock.runner += time.perf_counter() - t

    runtime.run_turn = timed_run


async def run(
    turns: int,
    database_url: str,
    count_calls: bool = False,
    pstats_path: str | None = None,
    upstream_url: str | None = None,
) -> dict[str, Any]:
    await asyncio.to_thread(migrate, database_url)
    model: dict[str, Any] = {"model_provider": "offline"}
    if upstream_url:
        model = {
            "model_provider": "openai",
            "openai_api_key": "sk-bench",
            "openai_base_url": upstream_url,
        }
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        log_level="WARNING",
        rate_limit_enabled=False,
        gc_freeze=False,
        **model,
    )
    app = create_app(settings)
    import jwt

    user_id = "bench-user"
    token = jwt.encode(
        {"sub": user_id, "exp": int(time.time()) + 3600}, settings.jwt_secret, algorithm="HS256"
    )
    headers = {"Authorization": f"Bearer {token}"}
    clock = Clock()
    durations: list[float] = []
    async with app.router.lifespan_context(app):
        instrument(app, clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:

            async def one(i: int, conversation: int | None) -> int:
                body: dict[str, Any] = {"message": MESSAGES[i % len(MESSAGES)]}
                if conversation:
                    body["conversation_id"] = conversation
                r = await c.post(f"/api/{user_id}/chat", json=body, headers=headers)
                r.raise_for_status()
                return int(r.json()["conversation_id"])

            conversation = None
            for i in range(30):  # warm-up, not measured
                conversation = await one(i, conversation if i % 14 else None)
            for attr in ("db", "db_in_tools", "model", "tools", "runner"):
                setattr(clock, attr, 0.0)
            clock.queries = 0
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            profiler = cProfile.Profile() if count_calls else None
            if profiler is not None:
                profiler.enable()
            for i in range(turns):
                t = time.perf_counter()
                conversation = await one(i, conversation if i % 14 else None)
                durations.append(time.perf_counter() - t)
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            if profiler is not None:
                profiler.disable()
                if pstats_path:
                    profiler.dump_stats(pstats_path)
    # CPU time barely depends on what else runs on the machine, unlike wall time: it is the
    # figure to compare before and after a change on a busy machine. It includes the
    # in-process client (httpx over ASGI), which a real server does not pay.
    cpu_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    total = sum(durations)
    sdk = clock.runner - clock.model - clock.tools
    tool_layer = clock.tools - clock.db_in_tools
    rest = total - clock.runner - (clock.db - clock.db_in_tools)
    q = statistics.quantiles(durations, n=100)
    return {
        "scenario": "turn-profile",
        "engine": database_url.split(":", 1)[0],
        "turns": turns,
        "p50_ms": round(statistics.median(durations) * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "turns_per_s_sequential": round(turns / total, 1),
        "cpu_ms_per_turn": round(cpu_s / turns * 1000, 2),
        # Python function calls per turn (with --count-calls): deterministic, so a fair
        # before/after figure even when other work shares the CPU. Timings are then inflated.
        "python_calls_per_turn": (
            round(pstats.Stats(profiler).total_calls / turns)  # type: ignore[attr-defined]
            if profiler is not None
            else None
        ),
        "queries_per_turn": round(clock.queries / turns, 2),
        "share": {
            "database": round(clock.db / total, 3),
            "model": round(clock.model / total, 3),
            "agents_sdk": round(sdk / total, 3),
            "mcp_tool_layer": round(tool_layer / total, 3),
            "http_auth_persistence_code": round(rest / total, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--count-calls", action="store_true", help="count Python calls")
    parser.add_argument("--pstats", help="with --count-calls: write cProfile stats here")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on a fresh PostgreSQL database (todochat_bench_profile, dropped afterwards)",
    )
    parser.add_argument(
        "--openai",
        action="store_true",
        help="the OpenAI path against fakes.openai_upstream (its own process, no delay)",
    )
    args = parser.parse_args()
    url = args.database_url
    upstream: subprocess.Popen[bytes] | None = None
    upstream_url = None
    if args.openai:
        port = free_port()
        upstream = subprocess.Popen(
            [sys.executable, "-m", "fakes.openai_upstream", "--port", str(port)],
        )
        upstream_url = f"http://127.0.0.1:{port}/v1"
        wait_for_port(port)
    database = None
    try:
        if args.postgres:
            from bench.harness import BenchDatabase

            database = BenchDatabase(name="todochat_bench_profile")
            asyncio.run(database.recreate())
            url = database.app_url
        if url is None:
            url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
        result = asyncio.run(run(args.turns, url, args.count_calls, args.pstats, upstream_url))
        print(json.dumps(result))
    finally:
        if database is not None:
            asyncio.run(database.drop())
        if upstream is not None:
            upstream.terminate()
            upstream.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("fake upstream did not start")


if __name__ == "__main__":
    main()
