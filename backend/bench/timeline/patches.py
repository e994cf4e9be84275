"""Local patches of the Agents SDK, to measure what a change there would give; never the
server's published figures. `BENCH_TIMELINE_PATCH=eager-gather` (what Python 3.12's eager task
factory would do to the SDK's `gather_with_cancel`) or `sequential-gather`."""

from __future__ import annotations

import importlib
from typing import Any

from todochat.agent.eager_gather import SDK_MODULES, eager_gather


async def _sequential_gather(*awaitables: Any, on_child_failure: Any = None) -> tuple[Any, ...]:
    """The Agents SDK's `gather_with_cancel` without a task per awaitable: each awaited in
    turn. The same results for our turns (the awaitables it gathers for them either finish
    without waiting or are the only one of their group with work to do)."""
    results = []
    for awaitable in awaitables:
        try:
            results.append(await awaitable)
        except BaseException as error:
            if on_child_failure is not None:
                on_child_failure(error)
            for rest in awaitables[len(results) + 1 :]:
                close = getattr(rest, "close", None)
                if close is not None:
                    close()
            raise
    return tuple(results)


def _patch_sdk_gather(replacement: Any) -> None:
    for name in SDK_MODULES:
        module = importlib.import_module(name)
        module.gather_with_cancel = replacement  # type: ignore[attr-defined]


def patch_sdk(name: str) -> None:
    """Applies the named patch ("" for none)."""
    if name == "sequential-gather":
        _patch_sdk_gather(_sequential_gather)
    elif name == "eager-gather":
        # What the service does by default (AGENT_EAGER_GATHER, P14).
        _patch_sdk_gather(eager_gather)
    elif name:
        raise ValueError(f"unknown patch {name!r}")
