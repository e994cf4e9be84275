"""The turn ledger: where a chat turn's progress is written, around the model's work.

A turn is `begin` (the user's message stored, or a stored answer found) → the agent runs, with
no connection held → `finish` (the reply and its tool calls stored) or `fail` (the failure
stored, with what the tools did). Each step is one short unit of work.

`PlainLedger` serves a turn without an `Idempotency-Key`. `KeyedLedger` also claims the key
with a lease in `begin` and stores the answer in `finish`, in the same transactions, so the
key's record always tells how far the turn got: a repeat replays a finished turn, waits for a
running one, and resumes one that was abandoned (its owner failed and let go of the lease, or
died and the lease ran out). Used as `async with ledger:`, the lease is given back on every
exit that neither finished nor failed the turn. Every frontend's turn (JSON, streamed, ChatKit)
goes through a ledger.
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


class TurnLedger:
    """A turn without an Idempotency-Key."""

    def __init__(
        self,
        *,
        db: Database,
        user_id: str,
        request: ChatRequest,
        history_limit: int,
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
        """Store the user's message (creating the conversation if needed); for a retry, drop
        what followed the stored message instead."""
        if self.retry_of is not None:
            assert self.request.conversation_id is not None, "a retry names its conversation"
            retried = await self.db.run(
                conversation_service.retry_turn,
                user_id=self.user_id,
                conversation_id=self.request.conversation_id,
                message_id=self.retry_of,
                history_limit=self.history_limit,
                admit=self.admit,
            )
            return OpenTurn.of(retried)
        start = await self.db.run(
            conversation_service.start_turn,
            user_id=self.user_id,
            conversation_id=self.request.conversation_id,
            message=self.request.message,
            history_limit=self.history_limit,
            admit=self.admit,
        )
        return OpenTurn.of(start)

    async def finish(self, turn: OpenTurn, response: ChatResponse) -> None:
        """Store the reply and its tool calls."""
        await self.db.run(self._store_reply, turn=turn, response=response)

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        """Store that the model failed (`reply` says so, and what the tools already did), so
        the conversation stays consistent; a keyed turn also lets go of its key so a retry
        resumes it."""
        await self.db.run(self._store_failure, turn=turn, tool_calls=tool_calls, reply=reply)

    async def abandon(self) -> None:
        """Let go of the turn after an error. A turn without a key holds nothing."""

    async def _store_reply(
        self, session: AsyncSession, *, turn: OpenTurn, response: ChatResponse
    ) -> None:
        await conversation_service.finish_turn(
            session,
            user_id=self.user_id,
            conversation_id=turn.conversation_id,
            reply=response.response,
            tool_calls=response.tool_calls,
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
            db=db, user_id=user_id, request=request, history_limit=history_limit, admit=admit
        )
        self.key = key
        self.request_hash = key.fingerprint(request)
        self.owner = idempotency.new_owner()
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
            except DatabaseUnavailable:
                # The claim may have committed without our knowing: give it back, if it is ours.
                await self._release_quietly()
                raise
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
        self._record_id = None

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        await self.db.run(self._store_failure, turn=turn, tool_calls=tool_calls, reply=reply)
        self._record_id = None

    async def abandon(self) -> None:
        if self._record_id is not None:
            await self._release_quietly()

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
        self._record_id = state.record_id
        log.warning(
            "resuming an abandoned chat turn",
            extra={"operation": "chat.resume", "conversation_id": state.conversation_id},
        )
        return await self._resume(session, state, resumed=True)

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
        await idempotency.release(session, user_id=self.user_id, key=self.key.key, owner=self.owner)

    async def _release_quietly(self) -> None:
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
