"""A turn sent with an Idempotency-Key: its key claimed with a lease in `begin` and its answer
stored in `finish`, in the same transactions as the turn's own steps."""

from __future__ import annotations

import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.chat.ledger.turn import Admission, OpenTurn, Replay, TurnLedger
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import ToolCall
from todochat.conversations.service import ConversationBusy
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
from todochat.lanes import sleep_aside

log = logging.getLogger("todochat.chat")


class _TurnHeld(Exception):
    """A keyed turn to resume whose conversation is still held: its unit of work rolls back."""


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
            # Another turn's wait, not this one's work: its lane goes to the next turn.
            await sleep_aside(pause)
            pause = min(pause * 2, 0.5)

    async def finish(self, turn: OpenTurn, response: ChatResponse) -> None:
        """Store the reply and the key's answer in one transaction."""
        await self._end(
            lambda: self.db.run_resolving(
                lambda session: self._store_answer(session, turn=turn, response=response),
                self._answered,
            )
        )
        self._record_id = None

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        await super().fail(turn, tool_calls, reply=reply)
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
