"""A long-history turn against a short one, in-process, on a fresh PostgreSQL database.

The `long-history` scenario's pair of conversations (one of 5,000 stored messages, fresh ones
of 10), turns alternating between them through the real app (ASGI transport, offline model,
the Agents SDK Runner, the MCP tools), each kind measured on its own. By default it counts
Python calls a turn with cProfile: deterministic, so a fair before/after figure on a busy
machine. With --cpu it measures process CPU time and database time a turn instead, without
the profiler. Prints one JSON object.

    python -m bench.history_profile [--turns 40] [--cpu] [--history-limit N] [--analyze]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from typing import Any

import asyncpg
import httpx
import jwt

from bench.harness import BenchDatabase
from bench.scenarios import OFFLINE_CYCLE, _seed_history
from bench.turn_profile import time_queries
from todochat.config import Settings
from todochat.main import create_app
from todochat.migrate import migrate

KINDS = ("long", "short")
WARMUP = 10


async def run(turns: int, *, cpu: bool, history_limit: int | None, analyze: bool) -> dict[str, Any]:
    database = BenchDatabase(name="todochat_bench_history_profile")
    await database.recreate()
    try:
        await asyncio.to_thread(migrate, database.app_url)
        limit = {"chat_history_limit": history_limit} if history_limit else {}
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database.app_url,
            log_level="WARNING",
            rate_limit_enabled=False,
            model_provider="offline",
            **limit,
        )
        users = {kind: f"bench-{kind}" for kind in KINDS}
        seed = await asyncpg.connect(database.dsn)
        try:
            long_cid = await _seed_history(seed, users["long"], 5000)
            short_cids = [
                await _seed_history(seed, users["short"], 10) for _ in range(turns + WARMUP)
            ]
            if analyze:
                # What autovacuum would have done by now to a table that grew this much.
                await seed.execute("ANALYZE messages")
        finally:
            await seed.close()
        return await _measure(settings, users, long_cid, short_cids, turns, cpu)
    finally:
        await database.drop()


async def _measure(
    settings: Settings,
    users: dict[str, str],
    long_cid: int,
    short_cids: list[int],
    turns: int,
    cpu: bool,
) -> dict[str, Any]:
    app = create_app(settings)
    headers = {
        kind: {
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": user, "exp": int(time.time()) + 3600},
                settings.jwt_secret,
                algorithm="HS256",
            )
        }
        for kind, user in users.items()
    }
    profilers = {kind: cProfile.Profile() for kind in KINDS}
    cpu_s: dict[str, list[float]] = {kind: [] for kind in KINDS}
    db_s = dict.fromkeys(KINDS, 0.0)
    current: dict[str, str | None] = {"kind": None}
    async with app.router.lifespan_context(app):

        def _query(elapsed: float) -> None:
            if current["kind"] is not None:
                db_s[current["kind"]] += elapsed

        time_queries(app, _query)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(turns + WARMUP):
                for kind in KINDS:
                    cid = long_cid if kind == "long" else short_cids[i]
                    body = {
                        "message": OFFLINE_CYCLE[i % len(OFFLINE_CYCLE)],
                        "conversation_id": cid,
                    }
                    measured = i >= WARMUP
                    profiler = profilers[kind] if measured and not cpu else None
                    current["kind"] = kind if measured and cpu else None
                    t = time.process_time()
                    if profiler is not None:
                        profiler.enable()
                    r = await client.post(
                        f"/api/{users[kind]}/chat", json=body, headers=headers[kind]
                    )
                    if profiler is not None:
                        profiler.disable()
                    if measured:
                        cpu_s[kind].append(time.process_time() - t)
                    r.raise_for_status()
    out: dict[str, Any] = {
        "scenario": "history-profile",
        "turns": turns,
        "history_limit": settings.chat_history_limit,
    }
    if not cpu:
        calls = {
            kind: round(pstats.Stats(p).total_calls / turns)  # type: ignore[attr-defined]
            for kind, p in profilers.items()
        }
        out["python_calls_per_turn"] = calls
        out["ratio"] = round(calls["long"] / calls["short"], 3)
        return out
    # In-process CPU includes the httpx client, which a real server does not pay.
    for kind in KINDS:
        out[kind] = {
            "cpu_ms_mean": round(statistics.mean(cpu_s[kind]) * 1000, 2),
            "cpu_ms_p50": round(statistics.median(cpu_s[kind]) * 1000, 2),
            "db_ms_per_turn": round(db_s[kind] / turns * 1000, 2),
        }
    out["ratio_cpu_mean"] = round(out["long"]["cpu_ms_mean"] / out["short"]["cpu_ms_mean"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=40, help="measured turns of each kind")
    parser.add_argument("--cpu", action="store_true", help="CPU and database time, no profiler")
    parser.add_argument("--history-limit", type=int, default=None, help="CHAT_HISTORY_LIMIT")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after seeding")
    args = parser.parse_args()
    result = asyncio.run(
        run(args.turns, cpu=args.cpu, history_limit=args.history_limit, analyze=args.analyze)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
