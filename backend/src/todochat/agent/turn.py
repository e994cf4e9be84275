"""One turn as the agent runs it: its context (what the model never sees), its result, and
how the stored history reaches the model at each step."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents import RunContextWrapper, ToolsToFinalOutputResult, TResponseInputItem
from agents.run_config import CallModelData, ModelInputData
from agents.tool import FunctionToolResult

from todochat.agent.turn_limits import TurnLimits, limited_reply
from todochat.agent.upstream import UpstreamFailure
from todochat.conversations.schemas import ToolCall


class ModelFailure(Exception):
    """The model upstream failed or timed out (`failure` says how, agent/upstream.py);
    `tool_calls` holds what the tools already did."""

    def __init__(self, failure: UpstreamFailure, tool_calls: list[ToolCall]) -> None:
        super().__init__(failure.kind)
        self.failure = failure
        self.tool_calls = tool_calls


@dataclass
class TurnContext:
    """Run context. `user_id` comes from the authenticated request and is never shown to the
    model; `history` is, in front of each step's input (see `with_history`)."""

    user_id: str
    history: list[TResponseInputItem] = field(default_factory=list)
    limits: TurnLimits = field(default_factory=lambda: TurnLimits(max_calls=20))
    # Set for a turn sent with an Idempotency-Key: tool calls that create things are keyed by
    # it, so a resumed turn replays them instead of acting twice.
    effect_scope: str | None = None
    effect_counts: dict[str, int] = field(default_factory=dict)
    request_id: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Set by the tools' failure handler when a tool could not reach the database (tools.py).
    database_outage: bool = False
    model_ms: float = 0.0
    tool_ms: float = 0.0
    model_calls: int = 0
    call_order: dict[str, int] = field(default_factory=dict)
    # Each call the model asked for, by call id: (name, arguments as sent), for the calls the
    # Runner does not run (an unknown tool name), which are stored all the same.
    requested: dict[str, tuple[str, str]] = field(default_factory=dict)
    _llm_started: float = 0.0
    _tool_started: dict[str, float] = field(default_factory=dict)

    def ordered_tool_calls(self) -> list[ToolCall]:
        last = len(self.call_order)
        return sorted(self.tool_calls, key=lambda c: self.call_order.get(c.id, last))

    def limited_reply(self) -> str:
        return limited_reply(self.ordered_tool_calls(), self.limits)


def stop_when_limited(
    context: RunContextWrapper[TurnContext], results: list[FunctionToolResult]
) -> ToolsToFinalOutputResult:
    """After a step whose calls hit a limit, the turn ends with the runtime's own account of
    what was done (see agent/turn_limits.py); otherwise the model takes the next step."""
    turn = context.context
    if turn.limits.reached:
        return ToolsToFinalOutputResult(is_final_output=True, final_output=turn.limited_reply())
    return ToolsToFinalOutputResult(is_final_output=False)


@dataclass(frozen=True)
class TurnResult:
    """A finished turn: the reply, the tool calls in the model's order, and where time went."""

    reply: str
    tool_calls: list[ToolCall]
    model_ms: float
    tool_ms: float
    model_calls: int


def with_history(data: CallModelData[TurnContext]) -> ModelInputData:
    """The model input of one step: the stored history, then what the Runner holds.

    The history is not given to the Runner as input because the Runner re-walks its whole input
    on every step (deep-converting it twice, normalising, copying) and deep-copies it once per
    turn, a cost per stored item that a long conversation paid on every step. Stored items are
    already plain input dicts, what that work would produce, so the model gets the same list.
    Every step gets the same item objects, not copies: the models only read their input.
    """
    history = data.context.history if data.context is not None else []
    if not history:
        return data.model_data
    return ModelInputData(
        input=[*history, *data.model_data.input], instructions=data.model_data.instructions
    )
