"""Lanes (P19): at most N turns of a worker do their own work at once, first come first served;
a turn gives its lane back while it waits for the model, and a lane is never lost or doubled,
whatever is cancelled where."""

from __future__ import annotations

import asyncio

import pytest

from todochat.lanes import Aside, Lanes, aside, pass_lane


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
    async with lanes.turn() as lane, aside():
        await pass_lane()
        task = asyncio.create_task(asyncio.sleep(0))
        lane.hand_over(task)
        await task
    assert not lane.handed_over
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


async def test_a_turn_handed_over_to_its_task_keeps_its_lane_until_the_task_ends() -> None:
    """A streamed turn goes on in a task of its own with the lane it began with: no second
    wait for a lane, and the next turn waits until that task is over."""
    lanes = Lanes(1)
    go_on = asyncio.Event()
    order: list[str] = []

    async def rest_of_the_turn() -> None:
        await go_on.wait()
        order.append("first turn ends")

    async with lanes.turn() as lane:
        task = asyncio.create_task(rest_of_the_turn())
        lane.hand_over(task)
    assert _free(lanes) == 0  # the block is left, the lane is still the task's

    async def next_turn() -> None:
        async with lanes.turn():
            order.append("next turn works")

    follower = asyncio.create_task(next_turn())
    await asyncio.sleep(0.01)
    assert order == []
    go_on.set()
    await asyncio.gather(task, follower)
    assert order == ["first turn ends", "next turn works"]
    assert _free(lanes) == 1


async def test_a_task_that_fails_gives_back_the_lane_handed_over_to_it() -> None:
    lanes = Lanes(1)

    async def failing() -> None:
        raise RuntimeError("the model failed")

    async with lanes.turn() as lane:
        task = asyncio.create_task(failing())
        lane.hand_over(task)
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)  # done callbacks run on the next pass
    assert _free(lanes) == 1


async def test_text_already_flowing_lets_the_turns_queued_before_it_go_first() -> None:
    """P21: a piece of text (after the first) waits for a free lane behind the turns queued
    before it, passes the lane straight on, and takes nothing."""
    lanes = Lanes(1)
    order: list[str] = []
    busy = asyncio.Event()
    release = asyncio.Event()
    in_aside = asyncio.Event()
    text_may_go = asyncio.Event()

    async def streaming_turn() -> None:
        async with lanes.turn(), aside():  # reading the model's answer, lane given back
            in_aside.set()
            await text_may_go.wait()
            await pass_lane()
            order.append("text")

    async def working_turn(name: str, hold: asyncio.Event | None = None) -> None:
        async with lanes.turn():
            if hold is not None:
                busy.set()
                await hold.wait()
            order.append(name)

    streaming = asyncio.create_task(streaming_turn())
    await in_aside.wait()
    first = asyncio.create_task(working_turn("working turn", release))
    await busy.wait()
    queued = asyncio.create_task(working_turn("queued turn"))
    await asyncio.sleep(0.01)
    text_may_go.set()  # a piece of text arrives after "queued turn" queued
    await asyncio.sleep(0.01)
    assert order == []  # the lane is held: text waits too
    release.set()
    await asyncio.gather(streaming, first, queued)
    assert order == ["working turn", "queued turn", "text"]
    assert _free(lanes) == 1


async def test_text_passes_at_once_when_a_lane_is_free_and_never_waits_on_its_own_lane() -> None:
    lanes = Lanes(1)
    async with lanes.turn():
        async with aside():
            # Nobody holds the lane: no wait at all (no pass through the loop).
            waiting = asyncio.ensure_future(pass_lane())
            await asyncio.sleep(0)
            assert waiting.done()
            await waiting
        # The turn holds its one lane again: waiting for a free one would wait forever.
        await asyncio.wait_for(pass_lane(), timeout=1)
    await asyncio.wait_for(pass_lane(), timeout=1)  # outside a turn: nothing to wait for
    assert _free(lanes) == 1


async def test_text_cancelled_while_it_waits_for_a_lane_takes_nothing() -> None:
    lanes = Lanes(1)
    release = asyncio.Event()
    in_aside = asyncio.Event()
    blocked = asyncio.Event()

    async def streaming_turn() -> None:
        async with lanes.turn(), aside():
            in_aside.set()
            await blocked.wait()
            await pass_lane()

    async def holder() -> None:
        async with lanes.turn():
            blocked.set()
            await release.wait()

    streaming = asyncio.create_task(streaming_turn())
    await in_aside.wait()
    holding = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    streaming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await streaming
    release.set()
    await holding
    assert _free(lanes) == 1
