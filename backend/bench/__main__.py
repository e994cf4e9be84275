"""`python -m bench [--scenario NAME]`: run the benchmark scenarios against PostgreSQL.

Prints one JSON object a scenario on stdout, a line each; progress goes to stderr. Each
scenario gets a fresh `todochat_bench` database (dropped afterwards) and its own server,
started as users start it: `todochat serve --workers 2`, production settings; `parse` times the
offline model in-process and needs neither.

    make bench                      # every scenario, in under 10 minutes
    make bench SCENARIO=overhead    # overhead capacity offline long-history soak db stream parse

BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) is the
administrative connection used to create and drop the bench database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from bench.harness import EXTRA_ENV, load_average, log
from bench.scenarios import OVERRIDES, SCENARIOS


async def run(names: list[str]) -> int:
    """Runs the scenarios; returns how many could not run at all."""
    failed = 0
    missed = 0
    started = time.monotonic()
    for name in names:
        log(f"{name}: starting (load average {load_average()})")
        t0 = time.monotonic()
        try:
            result = await SCENARIOS[name]()
        except Exception as exc:  # one broken scenario must not hide the others' figures
            result = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        result["duration_s"] = round(time.monotonic() - t0, 1)
        missed += not result.get("target", {}).get("met", False)
        print(json.dumps(result), flush=True)
        log(f"{name}: done in {result['duration_s']} s")
    elapsed = time.monotonic() - started
    log(f"all done in {elapsed:.0f} s; targets missed: {missed}, failed to run: {failed}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run only this one")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting for experiments (e.g. DB_POOL_SIZE=30); published figures use none",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="another concurrency for overhead, capacity and stream (experiments; published: none)",
    )
    args = parser.parse_args()
    if args.concurrency:
        OVERRIDES["concurrency"] = args.concurrency
    for item in args.env:
        name, _, value = item.partition("=")
        EXTRA_ENV[name.strip().upper()] = value
    names = [args.scenario] if args.scenario else list(SCENARIOS)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    failed = runner(run(names))
    # A missed target is a figure to report, not a crash: only a scenario that could not run
    # fails the command.
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
