"""A turn's wall time split into stages, from the records of bench/timeline/probe.py.

Each instant of a turn (from the app being called to the answer's last byte, or for a streamed
turn to the first text-delta written) is given to exactly one stage: the innermost probe span
covering it, by the order of `STAGES`; an instant no span covers is the app's own code (auth,
validation, the turn's bookkeeping), before or after the Runner. So the stages of a turn add up
to its wall time, and their means to the mean wall time (percentiles do not add up).

For each stage it also gives how much of it the worker's event loop was late (busy with other
work, or the worker not running at all: `late` records of the loop probe), split by the probe's
thread CPU time into "busy here" (CPU in this worker) and "not running" (other processes).
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import percentile

# Innermost first: an instant goes to the first stage here whose span covers it.
STAGES: list[tuple[str, str, str]] = [
    # (stage, span kind, what it is)
    ("db.statement", "db.statement", "a statement sent to its rows back (BEGIN in the first)"),
    ("db.commit", "db.commit", "COMMIT sent to the connection checked in"),
    ("db.checkout", "db.checkout", "the pool handing out a connection"),
    ("db.held", "db.unit", "a connection held, between its statements"),
    ("model.connect", "model.connect", "the model's HTTP client getting a connection"),
    ("model.send", "model.send", "the model request written"),
    ("model.wait", "model.wait", "waiting for the model's answer headers (upstream time)"),
    ("model.read", "model.read", "waiting for the answer's body, piece by piece"),
    ("lane.wait", "lane.wait", "queued for a lane (P19): at the start and after each model call"),
    ("tool", "sdk.function", "a tool call, outside its statements"),
    ("model.client", "sdk.generation", "the SDK and openai client around a model call"),
    ("model.client", "sdk.response", "the SDK and openai client around a model call"),
    ("http.send", "http.send", "uvicorn taking a piece of the answer"),
    ("runner", "sdk.agent", "the Runner's own steps (between model and tool calls)"),
]
BEFORE = "app.before_runner"
AFTER = "app.after_runner"
ORDER = [s for s, _, _ in STAGES] + [BEFORE, AFTER]
ORDER = list(dict.fromkeys(ORDER))
DESCRIPTIONS = {s: d for s, _, d in STAGES} | {
    BEFORE: "the app before the Runner (auth, body, limits; its statements are db.*)",
    AFTER: "the app after the Runner (the reply stored, the answer built)",
}
_RANK = {kind: i for i, (_, kind, _) in enumerate(STAGES)}
_STAGE_OF = {kind: stage for stage, kind, _ in STAGES}


@dataclass
class Turn:
    pid: str
    stream: bool
    start: float
    end: float
    cut: float  # where the breakdown stops: the end, or a streamed turn's first text
    spans: list[tuple[str, float, float]]
    stages: dict[str, float] = field(default_factory=dict)
    late_busy: dict[str, float] = field(default_factory=dict)
    late_idle: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)


def load(directory: Path, t0: float, t1: float) -> tuple[list[Turn], dict[str, list[Any]]]:
    """Turns that started in [t0, t1], and each worker's late loop wake-ups."""
    turns: list[Turn] = []
    late: dict[str, list[Any]] = defaultdict(list)
    for path in sorted(directory.glob("*.jsonl")):
        pid = path.stem
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == "late":
                late[pid].append((r["t0"], r["t1"], r["cpu"]))
            elif r["kind"] == "turn" and t0 <= r["start"] <= t1 and r["status"] == 200:
                cut = r["end"]
                if r["stream"]:
                    if not r["first_text"]:
                        continue
                    cut = r["first_text"]
                spans = [(k, a, b) for k, a, b in r["spans"]]
                turn = Turn(pid, r["stream"], r["start"], r["end"], cut, spans)
                turn.tasks = r.get("tasks", {})
                turns.append(turn)
    for intervals in late.values():
        intervals.sort()
    return turns, late


def split(turn: Turn, late: list[Any]) -> None:
    """Fills `turn.stages` (seconds per stage, summing to cut - start) and the late parts."""
    lo, hi = turn.start, turn.cut
    spans = [(k, max(a, lo), min(b, hi)) for k, a, b in turn.spans if k in _RANK]
    edges = {lo, hi}
    for _, a, b in spans:
        if a < b:
            edges.update((a, b))
    # The loop's late wake-ups that overlap the turn.
    i = bisect.bisect_left(late, (lo - 1.0,))
    overlapping = []
    for t0, t1, cpu in late[i:]:
        if t0 >= hi:
            break
        if t1 > lo:
            a, b = max(t0, lo), min(t1, hi)
            overlapping.append((a, b, min(cpu / max(t1 - t0 + 0.002, 1e-9), 1.0)))
            edges.update((a, b))
    points = sorted(edges)
    n = len(points) - 1
    rank = [len(STAGES)] * n
    for k, a, b in spans:
        if a >= b:
            continue
        r = _RANK[k]
        for j in range(bisect.bisect_left(points, a), bisect.bisect_left(points, b)):
            if r < rank[j]:
                rank[j] = r
    busy = [0.0] * n
    idle = [0.0] * n
    for a, b, share in overlapping:
        for j in range(bisect.bisect_left(points, a), bisect.bisect_left(points, b)):
            busy[j] = share
            idle[j] = 1.0 - share
    agent = [(a, b) for k, a, b in spans if k == "sdk.agent" and a < b]
    first_agent = min((a for a, _ in agent), default=hi)
    stages: dict[str, float] = defaultdict(float)
    late_busy: dict[str, float] = defaultdict(float)
    late_idle: dict[str, float] = defaultdict(float)
    for j in range(n):
        width = points[j + 1] - points[j]
        if rank[j] < len(STAGES):
            stage = STAGES[rank[j]][0]
        else:
            stage = BEFORE if points[j] < first_agent else AFTER
        stages[stage] += width
        late_busy[stage] += width * busy[j]
        late_idle[stage] += width * idle[j]
    turn.stages = dict(stages)
    turn.late_busy = dict(late_busy)
    turn.late_idle = dict(late_idle)
    counts: dict[str, int] = defaultdict(int)
    for k, a, _ in turn.spans:
        if a < hi:
            counts[k] += 1
    turn.counts = dict(counts)


def _ms(values: list[float], q: float) -> float:
    return round(percentile(sorted(values), q) * 1000, 1) if values else 0.0


def summarise(
    turns: list[Turn], late: dict[str, list[Any]], t0: float, t1: float
) -> dict[str, Any]:
    for turn in turns:
        split(turn, late.get(turn.pid, []))
    n = max(len(turns), 1)
    wall = [t.cut - t.start for t in turns]
    stages: dict[str, Any] = {}
    for stage in ORDER:
        values = [t.stages.get(stage, 0.0) for t in turns]
        if not any(values):
            continue
        stages[stage] = {
            "mean": round(sum(values) / n * 1000, 1),
            "p50": _ms(values, 50),
            "p95": _ms(values, 95),
            "loop_late_busy_mean": round(
                sum(t.late_busy.get(stage, 0.0) for t in turns) / n * 1000, 1
            ),
            "loop_late_not_running_mean": round(
                sum(t.late_idle.get(stage, 0.0) for t in turns) / n * 1000, 1
            ),
        }
    kinds = sorted({k for t in turns for k in t.counts})
    # The loop over the window: how much of it each worker's loop was late, and busy.
    loop: dict[str, Any] = {}
    for pid, intervals in late.items():
        inside = [(a, b, c) for a, b, c in intervals if t0 <= a <= t1]
        late_s = sum(b - a for a, b, _ in inside)
        loop[pid] = {
            "late_share": round(late_s / max(t1 - t0, 1e-9), 3),
            "late_p95_ms": _ms([b - a for a, b, _ in inside], 95),
            "late_max_ms": _ms([b - a for a, b, _ in inside], 100),
        }
    return {
        "turns": len(turns),
        "wall_ms": {
            "mean": round(sum(wall) / n * 1000, 1),
            "p50": _ms(wall, 50),
            "p95": _ms(wall, 95),
        },
        "stages_ms": stages,
        "spans_per_turn": {k: round(sum(t.counts.get(k, 0) for t in turns) / n, 2) for k in kinds},
        "loop": loop,
        "tasks_per_turn": round(sum(sum(t.tasks.values()) for t in turns) / n, 2),
        "tasks_by_coroutine": dict(
            sorted(
                (
                    (name, round(sum(t.tasks.get(name, 0) for t in turns) / n, 2))
                    for name in {k for t in turns for k in t.tasks}
                ),
                key=lambda kv: -kv[1],
            )[:15]
        ),
    }


def table(summary: dict[str, Any]) -> str:
    """The breakdown as a Markdown table."""
    rows = [
        "| stage | mean | p50 | p95 | of the mean: loop late, busy here / not running |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage, s in summary["stages_ms"].items():
        rows.append(
            f"| `{stage}` | {s['mean']} | {s['p50']} | {s['p95']} | "
            f"{s['loop_late_busy_mean']} / {s['loop_late_not_running_mean']} |"
        )
    w = summary["wall_ms"]
    rows.append(f"| **wall (server)** | **{w['mean']}** | {w['p50']} | {w['p95']} | |")
    return "\n".join(rows)
