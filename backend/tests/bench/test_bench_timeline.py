"""The turn timeline's breakdown (bench/timeline/breakdown.py): every instant of a turn goes to
one stage, the innermost span covering it, so the stages add up to the turn's wall time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.timeline.breakdown import AFTER, BEFORE, Turn, load, split, summarise


def _turn(spans: list[tuple[str, float, float]], *, end: float = 10.0) -> Turn:
    return Turn(pid="1", stream=False, start=0.0, end=end, cut=end, spans=spans)


def test_stages_add_up_to_the_wall_time_with_the_innermost_span_winning() -> None:
    turn = _turn(
        [
            ("db.unit", 0.5, 2.0),
            ("db.checkout", 0.5, 0.6),
            ("db.statement", 0.6, 1.0),
            ("db.commit", 1.5, 2.0),
            ("sdk.agent", 3.0, 9.0),
            ("sdk.generation", 3.0, 6.0),
            ("model.wait", 3.5, 5.5),
            ("sdk.function", 6.0, 7.0),
            ("db.statement", 6.2, 6.4),
            ("http.send", 9.5, 9.6),
            ("sdk.turn", 0.0, 10.0),  # a kind the breakdown does not know is ignored
        ]
    )
    split(turn, [])
    stages = {k: round(v, 6) for k, v in turn.stages.items()}
    assert stages == {
        "db.checkout": 0.1,
        "db.statement": 0.6,
        "db.held": 0.5,
        "db.commit": 0.5,
        "model.wait": 2.0,
        "model.client": 1.0,
        "tool": 0.8,
        "runner": 2.0,
        "http.send": 0.1,
        BEFORE: 0.5 + 1.0,
        AFTER: 0.5 + 0.4,
    }
    assert sum(turn.stages.values()) == pytest.approx(10.0)


def test_a_late_loop_is_counted_in_the_stage_it_fell_in_split_by_cpu() -> None:
    turn = _turn([("model.wait", 2.0, 6.0)])
    # Late from 4 to 5 s; the loop's thread ran 0.25 s of it (+ the 2 ms probe period).
    split(turn, [(4.0, 5.0, 0.25 * 1.002)])
    assert turn.late_busy["model.wait"] == pytest.approx(0.25)
    assert turn.late_idle["model.wait"] == pytest.approx(0.75)
    assert sum(turn.stages.values()) == pytest.approx(10.0)


def test_a_streamed_turn_is_cut_at_its_first_text_and_only_window_turns_count(
    tmp_path: Path,
) -> None:
    records = [
        {"kind": "late", "t0": 100.5, "t1": 100.6, "cpu": 0.1},
        {
            "kind": "turn",
            "stream": True,
            "start": 100.0,
            "end": 103.0,
            "status": 200,
            "first_text": 101.0,
            "spans": [["sdk.agent", 100.2, 102.9], ["model.read", 100.4, 100.9]],
            "tasks": {"Queue.get": 3},
        },
        # Started before the window: a warm-up turn.
        {
            "kind": "turn",
            "stream": False,
            "start": 50.0,
            "end": 51.0,
            "status": 200,
            "first_text": None,
            "spans": [],
        },
        # A streamed turn that never wrote text is not timed.
        {
            "kind": "turn",
            "stream": True,
            "start": 100.1,
            "end": 100.2,
            "status": 200,
            "first_text": None,
            "spans": [],
        },
    ]
    (tmp_path / "1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    turns, late = load(tmp_path, 99.0, 110.0)
    summary = summarise(turns, late, 99.0, 110.0)
    assert summary["turns"] == 1
    assert summary["wall_ms"]["mean"] == pytest.approx(1000.0)
    stages = summary["stages_ms"]
    assert stages["model.read"]["mean"] == pytest.approx(500.0)
    assert stages["runner"]["mean"] == pytest.approx(300.0)
    assert stages[BEFORE]["mean"] == pytest.approx(200.0)
    assert sum(s["mean"] for s in stages.values()) == pytest.approx(1000.0)
    assert summary["tasks_per_turn"] == 3
