"""Cross-check the asyncio load generator against wrk, on the same server and the same requests.

    python -m bench.crosscheck [--seconds 10] [--connections 32]

Starts one offline stack (as the scenarios do), then measures with the same number of
connections `GET /health/live` and a stateless chat turn (`POST /chat`, always a new
conversation, so both tools send the identical request), with wrk (`apt-get install wrk`) and
with `bench.loadgen` in turn, `--rounds` times each: on a shared machine the load drifts, so
only interleaved runs compare. Prints one JSON line per endpoint with every round and medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import load_average
from bench.loadgen import Connection, closed_loop, json_body
from bench.scenarios import Stack, make_users

CHAT_MESSAGE = "Add a task to buy groceries"

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
{body}
done = function(summary, latency, requests)
  io.stderr:write(string.format(
    '{{"requests": %d, "errors": %d, "seconds": %.3f, "p50_ms": %.2f, "p99_ms": %.2f}}\\n',
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


async def _ours(
    port: int, method: str, path: str, headers: bytes, body: bytes | None, c: int, s: float
) -> dict[str, Any]:
    async def step(conn: Connection) -> tuple[int, bytes]:
        return await conn.request(method, path, headers=headers, body=body)

    result = await closed_loop(
        host="127.0.0.1", port=port, users=[step] * c, warmup_s=2, duration_s=s
    )
    summary = result.summary()
    return {
        "requests_per_s": summary["turns_per_s"],
        "errors": summary["errors"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
    }


def _wrk(
    port: int, method: str, path: str, token: str, body: bytes | None, c: int, s: float
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"error": "wrk is not installed (apt-get install wrk)"}
    script = Path(tempfile.mkdtemp()) / "request.lua"
    body_line = f"wrk.body = {json.dumps(body.decode())}" if body else ""
    script.write_text(WRK_SCRIPT.format(method=method, token=token, body=body_line))
    # A warm-up run, then the measured one, like the asyncio client's warm-up.
    url = f"http://127.0.0.1:{port}{path}"
    for seconds in (2, s):
        proc = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{c}",
                f"-d{int(seconds)}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    figures: dict[str, Any] = json.loads(proc.stderr.strip().splitlines()[-1])
    return {
        "requests_per_s": round(figures["requests"] / figures["seconds"], 1),
        "errors": figures["errors"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
    }


async def main(seconds: float, connections: int, rounds: int) -> None:
    async with Stack(env={}) as stack:
        port = stack.srv.port
        [user] = make_users(1, stack.srv.secret)
        token = user.headers.decode().split("Bearer ", 1)[1].strip()
        chat = json_body({"message": CHAT_MESSAGE})
        cases = [
            ("GET /health/live", "GET", "/health/live", None),
            ("POST /chat", "POST", f"/api/{user.id}/chat", chat),
        ]
        for name, method, path, body in cases:
            runs: dict[str, list[dict[str, Any]]] = {"wrk": [], "bench.loadgen": []}
            for _ in range(rounds):
                runs["wrk"].append(
                    await asyncio.to_thread(
                        _wrk, port, method, path, token, body, connections, seconds
                    )
                )
                runs["bench.loadgen"].append(
                    await _ours(port, method, path, user.headers, body, connections, seconds)
                )
            out: dict[str, Any] = {
                "endpoint": name,
                "connections": connections,
                "seconds": seconds,
                "load_avg_1m": load_average(),
            }
            for tool, figures in runs.items():
                ok = [f for f in figures if "requests_per_s" in f]
                out[tool] = {
                    "median_requests_per_s": statistics.median(f["requests_per_s"] for f in ok)
                    if ok
                    else None,
                    "median_p50_ms": statistics.median(f["p50_ms"] for f in ok) if ok else None,
                    "rounds": figures,
                }
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.connections, args.rounds))
