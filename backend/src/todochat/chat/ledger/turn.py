"""A turn without an Idempotency-Key, and what every turn's ledger shares: the user's message
stored in `begin`, the reply in `finish` or the failure in `fail`, the conversation's turn held
(with a heartbeat) from `begin` until then."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from todochat.chat.ledger.heartbeat import Heartbeat
from todochat.chat.schemas import ChatRequest, ChatResponse
from todochat.conversations import service as conversation_service
from todochat.conversations.schemas import MessageRead, ToolCall, TurnStart
from todochat.conversations.service import TurnLease
from todochat.db import Database
from todochat.errors import DatabaseUnavailable, ModelUnavailable
from todochat.idempotency import service as idempotency

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
        self._heartbeat: Heartbeat | None = None

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
        await self._end(lambda: self.db.run(self._store_reply, turn=turn, response=response))

    async def fail(
        self, turn: OpenTurn, tool_calls: list[ToolCall], *, reply: str = ModelUnavailable.detail
    ) -> None:
        """Store that the model failed (`reply` says so, and what the tools already did), so
        the conversation stays consistent; a keyed turn also lets go of its key so a retry
        resumes it."""
        await self._end(
            lambda: self.db.run(self._store_failure, turn=turn, tool_calls=tool_calls, reply=reply)
        )

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
    def _hold(self, conversation_id: int) -> None:
        self._conversation_id = conversation_id
        self._heartbeat = Heartbeat(
            lease_s=self.lease.lease_s,
            renew=functools.partial(self.db.run, self._renew, conversation_id=conversation_id),
        )
        self._heartbeat.start()

    async def _end(self, last_unit: Callable[[], Awaitable[object]]) -> None:
        """Run the turn's last unit of work, which gives the lease back, and let the turn go.
        The beats stop first: a renewal after that unit would find the lease gone."""
        await self._stop_beating()
        await last_unit()
        await self._let_go()

    async def _let_go(self) -> None:
        self._conversation_id = None
        await self._stop_beating()

    async def _stop_beating(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            await heartbeat.stop()

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
