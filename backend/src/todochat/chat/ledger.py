"""The turn ledger: where a chat turn's progress is written, around the model's work.

A turn is `begin` (the user's message stored, or a stored answer found) → the agent runs, with
no connection held → `finish` (the reply and its tool calls stored) or `fail` (the failure
stored, with what the tools did). Each step is one short unit of work.

`PlainLedger` serves a turn without an `Idempotency-Key`. `KeyedLedger` also claims the key
with a lease in `begin` and stores the answer in `finish`, in the same transactions, so the
key's record always tells how far the turn got: a repeat replays a finished turn, waits for a
running one, and resumes one that was abandoned (its owner failed and let go of the lease, or
died and the lease ran out). From `begin` until the turn is finished, failed or let go, the
lease is renewed (a heartbeat every quarter of the short lease: a live owner keeps it however
long its model takes, a dead one loses it within IDEMPOTENCY_LEASE_S). Used as `async with
ledger:`, the lease is given back on every exit that neither finished nor failed the turn.
Every frontend's turn (JSON, streamed, ChatKit) goes through a ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import MessageRead, ToolCall, TurnStart
from todochat.conversations.service import ConversationBusy, TurnLease
from todochat.db import Database
from todochat.errors import DatabaseUnavailable, ModelUnavailable
from todochat.idempotency import service as idempotency
from todochat.idempotency.service import (
    Claimed,
    Finished,
    IdempotencyKey,
    IdempotencyKeyInUse,
    Started,
)

log = logging.getLogger("todochat.chat")

Admission = Callable[[], Awaitable[None]]
"""Spends the user's chat budget; runs once per new turn (never for a replay, a resumed turn or
a wait), inside `begin`'s unit of work once the request proved valid, before anything is
stored: what it raises (429) rolls the unit back."""


@dataclass(frozen=True)
class OpenTurn:
    """A turn whose user message is stored: what the agent needs to run it."""

    conversation_id: int
    message_id: int
    history: list[MessageRead]
    # Keyed turns: tool calls that create things are keyed by this, so that a resumed turn
    # replays them instead of acting twice.
    effect_scope: str | None = None
    resumed: bool = False

    @classmethod
    def of(
        cls, start: TurnStart, *, effect_scope: str | None = None, resumed: bool = False
    ) -> OpenTurn:
        return cls(
            conversation_id=start.conversation_id,
            message_id=start.message_id,
            history=start.history,
            effect_scope=effect_scope,
            resumed=resumed,
        )


@dataclass(frozen=True)
class Replay:
    """The stored answer of a finished turn with the same key and request."""

    response: ChatResponse


class _TurnHeld(Exception):
    """A keyed turn to resume whose conversation is still held: its unit of work rolls back."""


class TurnLedger:
    """A turn without an Idempotency-Key."""

    def __init__(
        self,
        *,
        db: Database,
        user_id: str,
        request: ChatRequest,
        history_limit: int,
        lease_s: float = 8.0,
        admit: Admission | None = None,
        retry_of: int | None = None,
    ) -> None:
        self.db = db
        self.user_id = user_id
        self.request = request
        self.history_limit = history_limit
        self.admit = admit
        # A stored user message to answer again (ChatKit's retry): `begin` stores no new one.
        self.retry_of = retry_of
        self.owner = idempotency.new_owner()
        # The conversation's turn is held (and the key's lease, for a keyed turn) from `begin`
        # until the turn is finished, failed or let go.
        self.lease = TurnLease(owner=self.owner, lease_s=lease_s)
        self._conversation_id: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TurnLedger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.abandon()

    async def begin(self) -> OpenTurn | Replay:
        """Hold the conversation's turn and store the user's message (creating the
        conversation if needed), or for a retry drop what followed the stored message;
        ConversationBusy (409) while another turn holds the conversation."""
        if self.retry_of is not None:
            assert self.request.conversation_id is not None, "a retry names its conversation"
            retried = await self.db.run(
                conversation_service.retry_turn,
                user_id=self.user_id,
                conversation_id=self.request.conversation_id,
                message_id=self.retry_of,
                history_limit=self.history_limit,
                lease=self.lease,
                admit=self.admit,
            )
            self._hold(retried.conversation_id)
            return OpenTurn.of(retried)
        start = await self.db.run(
            conversation_service.start_turn,
            user_id=self.user_id,
            conversation_id=self.request.conversation_id,
            message=self.request.message,
            history_limit=self.history_limit,
            lease=self.lease,
            admit=self.admit,
        )
        self._hold(start.conversation_id)
        return OpenTurn.of(start)

    async def finish(self, turn: OpenTurn, response: ChatResponse) -> None:
        """Store the reply and its tool calls; the conversation's turn is over."""
        await self.db.run(self._store_reply, turn=turn, response=response)
        await self._let_go()

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        """Store that the model failed (`reply` says so, and what the tools already did), so
        the conversation stays consistent; a keyed turn also lets go of its key so a retry
        resumes it."""
        await self.db.run(self._store_failure, turn=turn, tool_calls=tool_calls, reply=reply)
        await self._let_go()

    async def abandon(self) -> None:
        """Let go of the turn after an error: the conversation's next message need not wait
        for the lease to run out."""
        conversation_id = self._conversation_id
        await self._let_go()
        if conversation_id is not None:
            try:
                await self.db.run(
                    conversation_service.release_turn,
                    user_id=self.user_id,
                    conversation_id=conversation_id,
                    owner=self.owner,
                )
            except DatabaseUnavailable:
                # It runs out on its own within the lease.
                log.warning(
                    "could not give a conversation's turn back", extra={"operation": "chat.lease"}
                )

    # --- the heartbeat -----------------------------------------------------------------------
    # A timer, not a task sleeping in a loop: a turn is shorter than a beat, and a timer is
    # cancelled in place, where a task costs a loop pass to start and another to be cancelled
    # and awaited at the end of every turn (P16).
    def _hold(self, conversation_id: int) -> None:
        self._conversation_id = conversation_id
        self._schedule_beat(conversation_id)

    def _schedule_beat(self, conversation_id: int) -> None:
        self._timer = asyncio.get_running_loop().call_later(
            self.lease.lease_s / 4, self._start_beat, conversation_id
        )

    def _start_beat(self, conversation_id: int) -> None:
        self._timer = None
        self._heartbeat = asyncio.create_task(self._beat(conversation_id))

    async def _let_go(self) -> None:
        self._conversation_id = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None

    async def _beat(self, conversation_id: int) -> None:
        """Renew what the turn holds, then set the next beat, every quarter of the lease until
        the turn ends: a live turn keeps it however long its model takes, a dead one loses it
        within the lease. A renewal the database refuses now is tried again at the next beat;
        three missed in a row let the lease run out, and then another turn may take over (a
        keyed turn's tool calls are keyed, so nothing is done twice, and this turn's `finish`
        is refused)."""
        try:
            held = await self.db.run(self._renew, conversation_id=conversation_id)
        except Exception as exc:
            log.warning(
                "could not renew a chat turn's lease",
                extra={"operation": "chat.lease", "error_type": type(exc).__name__},
            )
            held = True
        if not held:
            log.warning("a chat turn's lease was taken over", extra={"operation": "chat.lease"})
        elif self._conversation_id == conversation_id:
            self._schedule_beat(conversation_id)
        self._heartbeat = None

    async def _renew(self, session: AsyncSession, *, conversation_id: int) -> bool:
        return await conversation_service.renew_turn(
            session, user_id=self.user_id, conversation_id=conversation_id, lease=self.lease
        )

    async def _store_reply(
        self, session: AsyncSession, *, turn: OpenTurn, response: ChatResponse
    ) -> None:
        await conversation_service.finish_turn(
            session,
            user_id=self.user_id,
            conversation_id=turn.conversation_id,
            reply=response.response,
            tool_calls=response.tool_calls,
            owner=self.owner,
        )

    async def _store_failure(
        self, session: AsyncSession, *, turn: OpenTurn, tool_calls: list[ToolCall], reply: str
    ) -> None:
        await conversation_service.finish_turn(
            session,
            user_id=self.user_id,
            conversation_id=turn.conversation_id,
            reply=reply,
            tool_calls=tool_calls,
            owner=self.owner,
        )


class KeyedLedger(TurnLedger):
    """A turn sent with an Idempotency-Key: claimed with a lease, answered at most once."""

    def __init__(
        self,
        *,
        db: Database,
        user_id: str,
        request: ChatRequest,
        history_limit: int,
        key: IdempotencyKey,
        admit: Admission | None = None,
    ) -> None:
        super().__init__(
            db=db,
            user_id=user_id,
            request=request,
            history_limit=history_limit,
            lease_s=key.lease_s,
            admit=admit,
        )
        self.key = key
        self.request_hash = key.fingerprint(request)
        # The record this request holds the lease of, until the turn is finished or let go.
        self._record_id: int | None = None

    async def begin(self) -> OpenTurn | Replay:
        """Claim the key and store the user's message in one transaction; or replay a finished
        turn, resume an abandoned one, or wait (up to the key's wait, then 409) for a running
        one."""
        deadline = time.monotonic() + self.key.wait_s
        pause = 0.05
        while True:
            try:
                outcome = await self.db.run_resolving(self._claim, self._claimed)
            except _TurnHeld:
                outcome = None  # the key is free, its conversation not yet: rolled back, wait
            except DatabaseUnavailable:
                # The claim may have committed without our knowing: give it back, if it is ours.
                await self._release_quietly()
                raise
            if isinstance(outcome, OpenTurn):
                self._hold(outcome.conversation_id)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInUse()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def finish(self, turn: OpenTurn, response: ChatResponse) -> None:
        """Store the reply and the key's answer in one transaction."""
        await self.db.run_resolving(
            lambda session: self._store_answer(session, turn=turn, response=response),
            self._answered,
        )
        await self._let_go()
        self._record_id = None

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        await self.db.run(self._store_failure, turn=turn, tool_calls=tool_calls, reply=reply)
        await self._let_go()
        self._record_id = None

    async def abandon(self) -> None:
        await super().abandon()
        if self._record_id is not None:
            await self._release_quietly()

    async def _renew(self, session: AsyncSession, *, conversation_id: int) -> bool:
        """The conversation's turn and the key's lease, renewed together: they run out
        together, so a retry that takes over the key finds the conversation free."""
        assert self._record_id is not None
        held = await idempotency.renew(
            session,
            user_id=self.user_id,
            record_id=self._record_id,
            key=self.key,
            owner=self.owner,
        )
        return held and await super()._renew(session, conversation_id=conversation_id)

    # --- units of work ---------------------------------------------------------------------
    async def _claim(self, session: AsyncSession) -> OpenTurn | Replay | None:
        """None: another request holds the key's lease."""
        state = await idempotency.claim(
            session,
            user_id=self.user_id,
            key=self.key,
            request_hash=self.request_hash,
            owner=self.owner,
        )
        if isinstance(state, Finished):
            return Replay(ChatResponse.model_validate(state.body))
        if isinstance(state, Claimed):
            start = await conversation_service.start_turn(
                session,
                user_id=self.user_id,
                conversation_id=self.request.conversation_id,
                message=self.request.message,
                history_limit=self.history_limit,
                lease=self.lease,
                admit=self.admit,
            )
            await idempotency.save_progress(
                session,
                record_id=state.record_id,
                user_id=self.user_id,
                owner=self.owner,
                conversation_id=start.conversation_id,
                message_id=start.message_id,
            )
            self._record_id = state.record_id
            return OpenTurn.of(start, effect_scope=self._effect_scope)
        if not await idempotency.take_over(
            session,
            user_id=self.user_id,
            record_id=state.record_id,
            key=self.key,
            owner=self.owner,
        ):
            return None  # its owner is still at work
        try:
            turn = await self._resume(session, state, resumed=True)
        except ConversationBusy:
            # Its conversation is held a moment longer (or by a newer turn): roll back the
            # take-over and wait.
            raise _TurnHeld() from None
        self._record_id = state.record_id
        log.warning(
            "resuming an abandoned chat turn",
            extra={"operation": "chat.resume", "conversation_id": state.conversation_id},
        )
        return turn

    async def _claimed(self, session: AsyncSession) -> OpenTurn | Replay | None:
        """After a commit of unknown outcome: our claim is durable if we hold the lease."""
        state = await idempotency.progress(
            session, user_id=self.user_id, key=self.key.key, owner=self.owner
        )
        if state is None:
            return None
        self._record_id = state.record_id
        return await self._resume(session, state, resumed=False)

    async def _resume(self, session: AsyncSession, state: Started, *, resumed: bool) -> OpenTurn:
        if state.conversation_id is None or state.message_id is None:
            # Progress is saved in the claim's own transaction, so a started record always
            # has it; one without is a broken invariant, not a turn to wait for.
            raise RuntimeError("a started chat turn has no stored message")
        start = await conversation_service.resume_turn(
            session,
            user_id=self.user_id,
            conversation_id=state.conversation_id,
            message_id=state.message_id,
            history_limit=self.history_limit,
            lease=self.lease,
        )
        return OpenTurn.of(start, effect_scope=self._effect_scope, resumed=resumed)

    async def _store_answer(
        self, session: AsyncSession, *, turn: OpenTurn, response: ChatResponse
    ) -> bool:
        assert self._record_id is not None, "finish() of a turn that was not begun"
        await self._store_reply(session, turn=turn, response=response)
        await idempotency.finish(
            session,
            record_id=self._record_id,
            user_id=self.user_id,
            owner=self.owner,
            status_code=200,
            body=response.model_dump(mode="json"),
        )
        return True

    async def _answered(self, session: AsyncSession) -> bool | None:
        finished = await idempotency.is_finished(
            session, user_id=self.user_id, key=self.key.key, request_hash=self.request_hash
        )
        return True if finished else None

    async def _store_failure(
        self, session: AsyncSession, *, turn: OpenTurn, tool_calls: list[ToolCall], reply: str
    ) -> None:
        # A resumed turn that failed again without running a tool adds nothing when a failure
        # is stored for it already: repeats after a configuration error must not pile up
        # apologies (M4 in specs/decisions.md).
        answered = (
            turn.resumed
            and not tool_calls
            and await conversation_service.list_messages(
                session,
                user_id=self.user_id,
                conversation_id=turn.conversation_id,
                after_id=turn.message_id,
                limit=1,
            )
        )
        if not answered:
            await super()._store_failure(session, turn=turn, tool_calls=tool_calls, reply=reply)
        else:
            await conversation_service.release_turn(
                session,
                user_id=self.user_id,
                conversation_id=turn.conversation_id,
                owner=self.owner,
            )
        await idempotency.release(session, user_id=self.user_id, key=self.key.key, owner=self.owner)

    async def _release_quietly(self) -> None:
        await self._let_go()
        self._record_id = None
        await idempotency.release_quietly(
            self.db,
            user_id=self.user_id,
            key=self.key.key,
            owner=self.owner,
            keep_trying_s=self.key.lease_s,
        )

    @property
    def _effect_scope(self) -> str:
        return f"{self.key.key}:{self.request_hash}"
