"""The turn ledger: where a chat turn's progress is written, around the model's work.

A turn is `begin` (the user's message stored, or a stored answer found) → the agent runs, with
no connection held → `finish` (the reply and its tool calls stored) or `fail` (the failure
stored, with what the tools did). Each step is one short unit of work.

`TurnLedger` (turn.py) serves a turn without an `Idempotency-Key`. `KeyedLedger` (keyed.py)
also claims the key with a lease in `begin` and stores the answer in `finish`, in the same
transactions, so the key's record always tells how far the turn got: a repeat replays a
finished turn, waits for a running one, and resumes one that was abandoned (its owner failed
and let go of the lease, or died and the lease ran out). From `begin` until the turn's last
unit of work, the leases are renewed (heartbeat.py: every quarter of the short lease, so a live
owner keeps them however long its model takes and a dead one loses them within the lease).
Used as `async with ledger:`, the lease is given back on every exit that neither finished nor
failed the turn.
Every frontend's turn (JSON, streamed, ChatKit) goes through a ledger.
"""

from todochat.chat.ledger.keyed import KeyedLedger
from todochat.chat.ledger.turn import Admission, OpenTurn, Replay, TurnLedger

__all__ = ["Admission", "KeyedLedger", "OpenTurn", "Replay", "TurnLedger"]
