"""Lanes: at most N chat turns of a worker run their own work at once, in the order they came.

A turn is not one piece of work but a few (begin; each step between two model calls; finish),
each many passes through the event loop (every statement, every tool). The loop runs whatever
is ready in turn, so when a wave of model answers comes back together, every turn of the wave
advances a little at each pass and they all end together, at the end of the wave: each waits
for the whole wave, and they come back together again at the next model call. Through a lane,
the turns of a wave go one after another (or N at a time): the first is done first, and the
wave leaves spread out. A turn holds its lane for its own work and gives it back for as long as
it waits for something that is not the worker's work (the model, a pause before a retry),
then queues, first come first served, to go on (P19 in specs/decisions.md; the figures are in
docs/PERFORMANCE.md).

The lane is taken by the turn (`Lanes.turn`) and given back around a wait by `aside()`, from
whichever task the wait happens in (the Agents SDK runs a streamed model call in a task of its
own); only the `aside` that gave the lane takes it back. A turn that goes on in a task of its
own (a streamed turn, after its beginning) hands its lane over to that task (`hand_over`)
rather than queueing for it again.

A streamed answer's text is read without a lane, but after its first piece each piece waits
for a free lane and passes it straight on (`pass_lane`): text already showing goes after the
turns queued before it, which have shown nothing yet (P21).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Literal


class _Hold:
    """One turn's claim on a lane: held, given back (for a wait), or being taken back."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self.semaphore = semaphore
        self.state: Literal["held", "given", "taking"] = "given"
        self.closed = False

    async def take(self) -> None:
        self.state = "taking"
        try:
            await self.semaphore.acquire()
        except BaseException:
            self.state = "given"  # cancelled while queued: nothing was taken
            raise
        if self.closed:  # the turn ended meanwhile, from another task
            self.state = "given"
            self.semaphore.release()
            return
        self.state = "held"

    def give(self) -> None:
        if self.state == "held":
            self.state = "given"
            self.semaphore.release()

    def close(self) -> None:
        self.give()
        self.closed = True


class TurnLane:
    """What `Lanes.turn` gives the turn: its lane, to hand over to the task it goes on in."""

    def __init__(self, hold: _Hold | None) -> None:
        self._hold = hold
        self.handed_over = False

    def hand_over(self, task: asyncio.Future[None]) -> None:
        """The turn goes on in `task`, created inside the `turn` block (so it runs in the
        turn's context): the lane stays held, and is given back when `task` ends."""
        hold = self._hold
        if hold is None:
            return
        self.handed_over = True
        task.add_done_callback(lambda _: hold.close())


_current: ContextVar[_Hold | None] = ContextVar("todochat_lane", default=None)


class Lanes:
    """The lanes of one worker (one event loop). `size` 0 turns them off."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[TurnLane]:
        """Around a turn's own work: queue for a lane, hold it, give it back at the end (or
        when the task it was handed over to ends)."""
        if self.size <= 0:
            yield TurnLane(None)
            return
        if self._semaphore is None:  # made on the worker's loop, at its first turn
            self._semaphore = asyncio.Semaphore(self.size)
        hold = _Hold(self._semaphore)
        await hold.take()
        token = _current.set(hold)
        lane = TurnLane(hold)
        try:
            yield lane
        finally:
            _current.reset(token)
            if not lane.handed_over:
                hold.close()


class Aside:
    """The lane given back now (if this turn holds it), for `resume` to take back, once."""

    def __init__(self) -> None:
        hold = _current.get()
        self._hold = hold if hold is not None and hold.state == "held" else None
        if self._hold is not None:
            self._hold.give()

    async def resume(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None and hold.state == "given" and not hold.closed:
            await hold.take()


@asynccontextmanager
async def aside() -> AsyncIterator[None]:
    """Around a wait that is not the worker's work: the lane goes to the next turn meanwhile,
    and this turn queues for it again after. Outside a turn, or where the lane is already
    given (a second wait at the same time), nothing happens."""
    step = Aside()
    try:
        yield
    except asyncio.CancelledError:
        raise  # the turn is being cancelled: its end gives back what it holds, nothing to queue for
    except BaseException:
        await step.resume()
        raise
    await step.resume()


async def sleep_aside(seconds: float) -> None:
    """`asyncio.sleep` that gives the lane back while it sleeps (tenacity's `sleep`)."""
    async with aside():
        await asyncio.sleep(seconds)


async def pass_lane() -> None:
    """Wait for a free lane, in order with the turns queued before, and pass it straight on.
    Only while this turn's lane is given back (a streamed answer being read): a turn that
    holds its lane has nothing to wait for. Outside a turn nothing happens."""
    hold = _current.get()
    if hold is None or hold.state != "given" or hold.closed:
        return
    async with hold.semaphore:
        pass
