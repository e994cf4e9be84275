"""What the offline model understands a message to ask for (an ``Intent``), the tools it
can call, and what it decides to do next (a ``Step``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal[
    "add",
    "list",
    "complete",
    "delete",
    "update",
    "again",
    "correct",
    "undo",
    "offer",
    "confirm",
    "cancel",
    "greet",
    "help",
    "thanks",
    "unknown",
]
ListStatus = Literal["all", "pending", "completed"]

ADD, LIST, COMPLETE, DELETE, UPDATE = (
    "add_task",
    "list_tasks",
    "complete_task",
    "delete_task",
    "update_task",
)
TOOL_FOR_KIND: dict[str, str] = {"complete": COMPLETE, "delete": DELETE, "update": UPDATE}
KIND_FOR_TOOL: dict[str, Kind] = {COMPLETE: "complete", DELETE: "delete", UPDATE: "update"}


@dataclass(frozen=True)
class Target:
    """Which task(s) a complete/delete/update request is about.

    One of them is meaningful: explicit ids, a reference to the task the conversation last
    touched ("it", "that one"), a position in the list the user sees ("the first one"; -1 is
    the last), or title words to look up via list_tasks. "The last one" sets both ``ref`` and
    ``ordinal``: it is the task just touched, unless a list was shown since.
    """

    ids: tuple[int, ...] = ()
    ref: bool = False
    query: str = ""
    ordinal: int = 0
    every: bool = False  # "all of them", "everything"
    # With ``every``: only the completed ("delete the done ones") or pending tasks; None when the
    # message does not say (then the action decides: pending for complete, all for delete).
    status: ListStatus | None = None


@dataclass(frozen=True)
class NewTask:
    title: str
    description: str | None = None


@dataclass(frozen=True)
class Intent:
    kind: Kind
    new_tasks: tuple[NewTask, ...] = ()
    status: ListStatus = "all"
    target: Target = field(default_factory=Target)
    title: str | None = None
    description: str | None = None
    # Read from a loose cue (a statement, not a command): when no task matches, the message
    # was probably not about the list at all, so we answer with help instead of "not found".
    soft: bool = False
    # "change it to oat milk": the new words may be only the part of the title that changes.
    partial: bool = False


UNKNOWN = Intent("unknown")


@dataclass(frozen=True)
class PlannedCall:
    name: str
    args: dict[str, Any]


Step = list[PlannedCall] | str
