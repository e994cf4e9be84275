"""Every natural-language case, through the real HTTP route on the offline model, on both
engines: the shared acceptance sample, our own larger set of phrasings, and the held-out
batches (each written in full, and run once, before the offline model was tuned on it; their
first-run pass rates are recorded in specs/chat.md)."""

from __future__ import annotations

import pytest

from tests.acceptance.runner import HERE, load_cases, run_case
from tests.conftest import User

SHARED = load_cases("nl_cases.jsonl")
OURS = load_cases("phrasings.jsonl")
HOLDOUTS = sorted(path.name for path in HERE.glob("holdout*.jsonl"))
# The target is 90% on phrasings nobody tuned on; our own files must clear it with margin.
MIN_PASS_RATE = 0.95


def _id(case: dict) -> str:
    say = case["say"] if isinstance(case["say"], str) else " / ".join(case["say"])
    return say[:60]


async def _failures(client, cases: list[dict]) -> dict[str, list[str]]:
    failed = {}
    for case in cases:
        problems = await run_case(client, User(), case)
        if problems:
            failed[_id(case)] = problems
    return failed


@pytest.mark.parametrize("case", SHARED, ids=[_id(c) for c in SHARED])
async def test_shared_acceptance_case(client, case) -> None:
    failures = await run_case(client, User(), case)
    assert failures == []


async def test_own_phrasings_pass_rate(client) -> None:
    failed = await _failures(client, OURS)
    rate = 1 - len(failed) / len(OURS)
    assert rate >= MIN_PASS_RATE, f"{rate:.0%} passed; failures: {failed}"


def test_held_out_batches_are_present_and_large_enough() -> None:
    sizes = {name: len(load_cases(name)) for name in HOLDOUTS}
    assert len(sizes) >= 2 and all(size >= 40 for size in sizes.values()), sizes


@pytest.mark.parametrize("name", HOLDOUTS)
async def test_held_out_batch_pass_rate(client, name) -> None:
    cases = load_cases(name)
    failed = await _failures(client, cases)
    rate = 1 - len(failed) / len(cases)
    assert rate >= MIN_PASS_RATE, f"{name}: {rate:.0%} passed; failures: {failed}"
