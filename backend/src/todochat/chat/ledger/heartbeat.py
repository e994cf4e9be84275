"""A chat turn's heartbeat: what the turn holds, renewed every quarter of its lease (S2).

A timer, not a task sleeping in a loop: most turns are shorter than a beat, and a timer is set
and cancelled in place, where a task costs a loop pass to start and another to be cancelled and
awaited at the end of every turn (P16).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("todochat.chat")


class Heartbeat:
    """Calls `renew` every `lease_s / 4` from `start` until `stop`: a live turn keeps its lease
    however long its model takes, a dead one loses it within the lease. A renewal the database
    refuses is tried again at the next beat; three missed in a row let the lease run out, and
    then another turn may take over (a keyed turn's tool calls are keyed, so nothing is done
    twice, and this turn's `finish` is refused). `renew` answers False when the lease was lost:
    the beats end there."""

    def __init__(self, *, lease_s: float, renew: Callable[[], Awaitable[bool]]) -> None:
        self.interval_s = lease_s / 4
        self.renew = renew
        self._beating = False
        self._timer: asyncio.TimerHandle | None = None
        self._renewal: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._beating = True
        self._schedule()

    async def stop(self) -> None:
        """No renewal from now on. One under way is let finish, since a unit of work cut short
        by a cancellation leaves its connection to be closed mid-reply; it is cancelled only
        when stuck for a beat, or when the caller itself is cancelled meanwhile."""
        self._beating = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        renewal = self._renewal
        if renewal is None:
            return
        try:
            if not renewal.done():
                await asyncio.wait((renewal,), timeout=self.interval_s)
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
            self._renewal = None

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._beat)

    def _beat(self) -> None:
        self._timer = None
        self._renewal = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            held = await self.renew()
        except Exception as exc:
            log.warning(
                "could not renew a chat turn's lease",
                extra={"operation": "chat.lease", "error_type": type(exc).__name__},
            )
            held = True
        if not self._beating:
            return  # the turn is ending, and gives the lease back itself
        if not held:
            log.warning("a chat turn's lease was taken over", extra={"operation": "chat.lease"})
            return
        self._schedule()
