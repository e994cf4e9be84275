"""Deterministic, offline stand-in for an LLM that drives the todo tools.

``OfflineModel`` implements the OpenAI Agents SDK ``Model`` interface so the chatbot works
without an API key.  It is *stateless*: on every call it re-reads the conversation handed to it
by the Runner (``conversation``), parses the latest user message into an ``Intent`` with
precompiled regexes (``parser`` and the rule modules it calls), looks at the tool calls already
made in this turn, and decides the next step (``planning``): more tool calls, or the final
reply (``replies``).  Nothing but the uuid-based ids is random, so a given history always
produces the same answer.

Tool contract (names must match the tools given to the agent):
    add_task(title, description?)           -> {task_id, status: "created", title}
    list_tasks(status?="all"|"pending"|"completed") -> [{id, title, description, completed}]
    complete_task(task_id)                  -> {task_id, status: "completed", title}
    delete_task(task_id)                    -> {task_id, status: "deleted", title}
    update_task(task_id, title?, description?) -> {task_id, status: "updated", title}
    errors                                  -> {"error": "Task 7 not found"}
"""

from todochat.agent.offline.model import OfflineModel

__all__ = ["OfflineModel"]
