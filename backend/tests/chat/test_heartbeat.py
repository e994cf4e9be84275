"""chat/ledger/heartbeat.py: renewals on a timer; a renewal under way is let finish."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from todochat.chat.ledger.heartbeat import Heartbeat


async def test_it_renews_every_quarter_of_the_lease_until_stopped() -> None:
    calls: list[float] = []

    async def renew() -> bool:
        calls.append(asyncio.get_running_loop().time())
        return True

    beat = Heartbeat(lease_s=0.2, renew=renew)
    beat.start()
    await asyncio.sleep(0.23)
    await beat.stop()
    count = len(calls)
    # Never sooner than a quarter of the lease apart; later only when the machine is busy.
    assert count >= 2
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(calls))
    await asyncio.sleep(0.12)
    assert len(calls) == count


async def test_a_renewal_under_way_is_let_finish_and_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[bool] = []
    started = asyncio.Event()

    async def renew() -> bool:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(True)
        return False  # the turn gave the lease back meanwhile

    beat = Heartbeat(lease_s=0.4, renew=renew)
    beat.start()
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="todochat.chat"):
        await beat.stop()
    assert finished == [True]
    assert "taken over" not in caplog.text


async def test_a_lost_lease_ends_the_beats_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def renew() -> bool:
        nonlocal calls
        calls += 1
        return False

    beat = Heartbeat(lease_s=0.08, renew=renew)
    with caplog.at_level(logging.WARNING, logger="todochat.chat"):
        beat.start()
        await asyncio.sleep(0.15)
    assert calls == 1
    assert "a chat turn's lease was taken over" in caplog.text
    await beat.stop()


async def test_a_refused_renewal_is_tried_again_at_the_next_beat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def renew() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return True

    beat = Heartbeat(lease_s=0.08, renew=renew)
    with caplog.at_level(logging.WARNING, logger="todochat.chat"):
        beat.start()
        await asyncio.sleep(0.07)
        await beat.stop()
    assert calls >= 2
    assert "could not renew a chat turn's lease" in caplog.text


async def test_a_stuck_renewal_is_cancelled_after_a_beat() -> None:
    async def renew() -> bool:
        await asyncio.sleep(10)
        return True

    beat = Heartbeat(lease_s=0.08, renew=renew)
    beat.start()
    await asyncio.sleep(0.03)
    started = asyncio.get_running_loop().time()
    await beat.stop()
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_stop_cancelled_meanwhile_leaves_no_renewal_running() -> None:
    """The turn's task cancelled (shut-down) while its heartbeat waits for a renewal: the
    renewal is cancelled with it, not left to commit after the turn gave its lease back."""
    events: list[str] = []
    started = asyncio.Event()

    async def renew() -> bool:
        started.set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            events.append("renewal cancelled")
            raise
        events.append("renewal finished")
        return True

    beat = Heartbeat(lease_s=4, renew=renew)
    beat.start()
    beat._timer.cancel()  # type: ignore[union-attr]
    beat._beat()  # the timer's call, now
    await started.wait()
    stopping = asyncio.create_task(beat.stop())
    await asyncio.sleep(0.01)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert events == ["renewal cancelled"]
    await beat.stop()  # nothing left to wait for
    await asyncio.sleep(0.6)
    assert events == ["renewal cancelled"]
