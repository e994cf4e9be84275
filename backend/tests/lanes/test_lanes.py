"""Lanes (P19): at most N turns of a worker do their own work at once, first come first served;
a turn gives its lane back while it waits for the model, and a lane is never lost or doubled,
whatever is cancelled where."""

from __future__ import annotations

import asyncio

import pytest

from todochat.lanes import Aside, Lanes, aside


def _free(lanes: Lanes) -> int:
    """Lanes nobody holds (the semaphore's count)."""
    assert lanes._semaphore is not None
    return lanes._semaphore._value


async def test_at_most_n_turns_work_at_once_and_in_the_order_they_came() -> None:
    lanes = Lanes(2)
    working = 0
    most = 0
    order: list[str] = []

    async def turn(name: str) -> None:
        nonlocal working, most
        async with lanes.turn():
            working += 1
            most = max(most, working)
            order.append(name)
            await asyncio.sleep(0.01)  # its own work, with a database round trip or two
            working -= 1

    await asyncio.gather(*(turn(f"t{i}") for i in range(6)))
    assert most == 2
    assert order == [f"t{i}" for i in range(6)]
    assert _free(lanes) == 2


async def test_a_turn_waiting_aside_lets_the_next_one_work_then_queues_behind_it() -> None:
    lanes = Lanes(1)
    events: list[str] = []
    model_answered = asyncio.Event()

    async def first() -> None:
        async with lanes.turn():
            events.append("first works")
            async with aside():  # the model
                events.append("first waits for the model")
                await model_answered.wait()
            events.append("first goes on")

    async def second() -> None:
        await asyncio.sleep(0)  # comes second
        async with lanes.turn():
            events.append("second works")
            model_answered.set()  # the model answers the first while the second works
            await asyncio.sleep(0.01)
            events.append("second done")

    await asyncio.gather(first(), second())
    assert events == [
        "first works",
        "first waits for the model",
        "second works",
        "second done",
        "first goes on",
    ]
    assert _free(lanes) == 1


async def test_aside_outside_a_turn_and_with_no_lanes_does_nothing() -> None:
    async with aside():
        pass
    lanes = Lanes(0)
    async with lanes.turn(), aside():
        pass
    assert lanes._semaphore is None


@pytest.mark.parametrize("where", ["queued to begin", "queued to go on after a wait"])
async def test_a_cancelled_turn_neither_loses_nor_doubles_a_lane(where: str) -> None:
    lanes = Lanes(1)
    holder_may_end = asyncio.Event()
    waiting = asyncio.Event()

    async def holder() -> None:
        async with lanes.turn():
            await holder_may_end.wait()

    async def victim() -> None:
        if where == "queued to begin":
            await asyncio.sleep(0)
            async with lanes.turn():
                raise AssertionError("never gets the lane")
        else:
            async with lanes.turn():
                async with aside():
                    waiting.set()
                    await asyncio.sleep(0.01)
                raise AssertionError("never gets the lane back")

    if where == "queued to begin":
        h = asyncio.create_task(holder())
        v = asyncio.create_task(victim())
        await asyncio.sleep(0.01)
    else:
        v = asyncio.create_task(victim())
        await waiting.wait()
        h = asyncio.create_task(holder())  # takes the lane the victim gave
        await asyncio.sleep(0.05)  # the victim's wait is over: it queues behind the holder
    v.cancel()
    with pytest.raises(asyncio.CancelledError):
        await v
    holder_may_end.set()
    await h
    assert _free(lanes) == 1
    # And the lane works: two turns after it still take turns.
    order: list[int] = []

    async def after(i: int) -> None:
        async with lanes.turn():
            order.append(i)
            await asyncio.sleep(0)

    await asyncio.gather(after(1), after(2))
    assert order == [1, 2]
    assert _free(lanes) == 1


async def test_a_wait_that_outlives_its_turn_takes_nothing_back() -> None:
    """A streamed answer closed after its turn ended (the SDK closes provider streams in the
    background) must not take a lane that nobody would give back."""
    lanes = Lanes(1)
    async with lanes.turn():
        step = Aside()
    await step.resume()
    assert _free(lanes) == 1


async def test_two_waits_at_once_give_and_take_the_lane_once() -> None:
    lanes = Lanes(1)

    async def wait() -> None:
        async with aside():
            await asyncio.sleep(0.01)

    async with lanes.turn():
        await asyncio.gather(wait(), wait())
        assert _free(lanes) == 0  # held again, once
    assert _free(lanes) == 1


async def test_a_turn_cancelled_while_it_waits_aside_does_not_queue_for_its_lane() -> None:
    """Cancelled during the model call while another turn holds the lane, a turn ends at once:
    it does not wait for the lane only to give it back."""
    lanes = Lanes(1)
    in_wait = asyncio.Event()
    other_holds = asyncio.Event()
    other_may_end = asyncio.Event()

    async def waiting() -> None:
        async with lanes.turn(), aside():
            in_wait.set()
            await asyncio.Event().wait()  # the model, answering never

    async def other() -> None:
        async with lanes.turn():
            other_holds.set()
            await other_may_end.wait()

    w = asyncio.create_task(waiting())
    await in_wait.wait()
    o = asyncio.create_task(other())
    await other_holds.wait()
    w.cancel()
    await asyncio.wait({w}, timeout=1)
    assert w.done(), "the cancelled turn queued for the lane the other turn holds"
    assert w.cancelled()
    assert _free(lanes) == 0  # the other turn's
    other_may_end.set()
    await o
    assert _free(lanes) == 1
