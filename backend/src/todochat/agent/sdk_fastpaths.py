"""Two pure functions of the Agents SDK, replaced by faster ones that return the same (P18).

- `agents.util._json._to_dump_compatible_internal` copies every message list and tool schema
  a model call sends, testing each value against the `Mapping` and `Iterable` ABCs (slow
  `isinstance` checks): 548 calls a model call here. `dump_compatible` takes the plain types
  (dict, list, tuple, str, numbers, None) by their exact type and hands anything else to the
  SDK's own function, so the result is the same value.
- `agents._run_state_agent_identity._build_agent_identity_map` sorts the agents of each name by
  a JSON signature of their whole configuration (instructions, tools, schemas), computed even
  for a name only one agent has: twice a run. When no two agents share a name, which is
  always the case here, each agent's identity is its name, and that is what the SDK's sort
  gives; otherwise the SDK's function runs.

Both names are private, so `pyproject.toml` pins `openai-agents` to its minor release and
tests/agent/test_sdk_fastpaths.py compares each with the SDK's own on the same inputs and
fails if the SDK stops calling them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# Where the SDK looks the identity map up by name (openai-agents 0.24).
IDENTITY_MODULES = (
    "agents._run_state_agent_identity",
    "agents.run_internal.tool_use_tracker",
    "agents.run_state",
)

_sdk_dump_compatible: Callable[[Any], Any] | None = None
_sdk_identity_map: Callable[[Any], dict[str, Any]] | None = None
_sdk_iter_agent_graph: Callable[[Any], Any] | None = None


def dump_compatible(obj: Any) -> Any:
    """`_to_dump_compatible_internal`: the value with mappings as dicts and other iterables
    (strings and bytes aside) as lists, recursively."""
    kind = type(obj)
    if kind is dict:
        return {key: dump_compatible(value) for key, value in obj.items()}
    if kind is list or kind is tuple:
        return [dump_compatible(item) for item in obj]
    if kind is str or kind is int or kind is float or kind is bool or obj is None:
        return obj
    assert _sdk_dump_compatible is not None, "install() first"
    return _sdk_dump_compatible(obj)


def agent_identity_map(initial_agent: Any) -> dict[str, Any]:
    """`_build_agent_identity_map`: a stable identity for each agent reachable from
    `initial_agent`, in the graph's order."""
    assert _sdk_identity_map is not None and _sdk_iter_agent_graph is not None, "install() first"
    agents = list(_sdk_iter_agent_graph(initial_agent))
    by_name = {agent.name: agent for agent in agents}
    if len(by_name) < len(agents):
        return _sdk_identity_map(initial_agent)
    return by_name


def install() -> None:
    """Replace both functions in the SDK (idempotent)."""
    global _sdk_dump_compatible, _sdk_identity_map, _sdk_iter_agent_graph
    json_module = importlib.import_module("agents.util._json")
    current = json_module._to_dump_compatible_internal
    if current is not dump_compatible:
        _sdk_dump_compatible = current
        setattr(json_module, "_to_dump_compatible_internal", dump_compatible)  # noqa: B010
    identity = importlib.import_module(IDENTITY_MODULES[0])
    if _sdk_identity_map is None:
        _sdk_identity_map = identity._build_agent_identity_map
        _sdk_iter_agent_graph = identity._iter_agent_graph
    for name in IDENTITY_MODULES:
        module = importlib.import_module(name)
        if not hasattr(module, "_build_agent_identity_map"):
            raise RuntimeError(f"{name} no longer has _build_agent_identity_map; see sdk_fastpaths")
        setattr(module, "_build_agent_identity_map", agent_identity_map)  # noqa: B010
