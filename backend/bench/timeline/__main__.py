"""`python -m bench.timeline`: where a turn's time goes, stage by stage, under load.

Runs a `make bench` scenario (`overhead`: JSON turns against a 500 ms upstream; `stream`:
streamed turns, judged to their first text) with the server started through
`bench.timeline.launch` (the probes of bench/timeline/probe.py in every worker; tracing on,
to our processor only), once per concurrency, and prints per run one JSON line: the
scenario's own figures, then the breakdown of the turns that started in the measurement window
(bench/timeline/breakdown.py), and the same breakdown as a Markdown table on stderr.

    python -m bench.timeline --scenario overhead --concurrency 10 50 100
    python -m bench.timeline --scenario stream --concurrency 50

The probes cost CPU (a span per statement, tool and model call, a loop probe every 2 ms):
compare `server_cpu_ms_per_turn` with an uninstrumented run, and judge targets on those.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import load_average, log
from bench.scenarios import OVERRIDES, SCENARIOS, STREAM_FIRST_TOKEN_S
from bench.timeline.breakdown import load, summarise, table
from bench.timeline.launch import DIR_ENV

from bench import harness

BACKEND = Path(__file__).resolve().parents[2]
KEEP = (
    *("concurrency", "turns", "errors", "p50_ms", "p95_ms", "turns_per_s"),
    *("server_cpu_ms_per_turn", "cpu_cores", "overhead_ms", "first_text_overhead_ms"),
    *("upstream", "machine", "pool_timeouts", "errors_by_kind"),
)


async def one(scenario: str, concurrency: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="todochat-timeline-"))
    OVERRIDES["concurrency"] = concurrency
    harness.SERVER_COMMAND[:] = [sys.executable, "-m", "bench.timeline.launch"]
    path = os.environ.get("PYTHONPATH", "")
    harness.EXTRA_ENV.update(
        {
            DIR_ENV: str(directory),
            "OPENAI_TRACING": "true",
            "PYTHONPATH": os.pathsep.join(p for p in (str(BACKEND), path) if p),
        }
    )
    try:
        result = await SCENARIOS[scenario]()
        t0, t1 = harness.WINDOW["start"], harness.WINDOW["end"]
        turns, late = load(directory, t0, t1)
        summary = summarise(turns, late, t0, t1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if scenario == "stream":
        # To the first text: the upstream was asked to take this long before its first piece.
        asked = STREAM_FIRST_TOKEN_S * 1000
    else:
        asked = result["upstream"]["calls_per_turn"] * result["upstream"]["delay_ms"]
    out = {"scenario": scenario, **{k: result[k] for k in KEEP if k in result}}
    out["upstream_asked_ms_per_turn"] = round(asked, 1)
    out["timeline"] = summary
    log(f"{scenario} at {concurrency} (load {load_average()}):\n{table(summary)}")
    return out


async def run(scenario: str, levels: list[int]) -> None:
    for level in levels:
        print(json.dumps(await one(scenario, level)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--scenario", choices=("overhead", "stream"), default="overhead")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    for item in args.env:
        name, _, value = item.partition("=")
        harness.EXTRA_ENV[name.strip().upper()] = value
    import uvloop

    uvloop.run(run(args.scenario, args.concurrency))


if __name__ == "__main__":
    main()
