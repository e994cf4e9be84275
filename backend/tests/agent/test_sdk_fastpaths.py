"""agent/sdk_fastpaths.py: each replacement gives what the SDK's own function gives, and the
pinned SDK still calls the names replaced."""

from __future__ import annotations

import collections
import importlib
import inspect
from typing import Any

import pytest
from agents import Agent, handoff

from todochat.agent import sdk_fastpaths
from todochat.agent.sdk_fastpaths import IDENTITY_MODULES, agent_identity_map, dump_compatible


@pytest.fixture(autouse=True)
def installed() -> None:
    sdk_fastpaths.install()


def sdk_dump(obj: Any) -> Any:
    """The SDK's function, recursing into itself rather than into the replacement."""
    if isinstance(obj, collections.abc.Mapping):
        return {k: sdk_dump(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sdk_dump(x) for x in obj]
    if isinstance(obj, collections.abc.Iterable) and not isinstance(obj, str | bytes | bytearray):
        return [sdk_dump(x) for x in obj]
    return obj


def test_the_copy_of_the_sdk_matches_its_source() -> None:
    """`sdk_dump` above is the SDK's function as pinned: the other tests compare against it."""
    source = inspect.getsource(importlib.import_module("agents.util._json"))
    body = source.split("def _to_dump_compatible_internal(obj: Any) -> Any:", 1)[1]
    for line in (
        "if isinstance(obj, Mapping):",
        "if isinstance(obj, list | tuple):",
        "if isinstance(obj, Iterable) and not isinstance(obj, str | bytes | bytearray):",
    ):
        assert line in body


@pytest.mark.parametrize(
    "value",
    [
        {"role": "user", "content": "buy milk", "n": 1, "ok": True, "x": 1.5, "none": None},
        [{"type": "function", "function": {"name": "add_task", "parameters": {"a": [1, (2, 3)]}}}],
        ("a", b"bytes", bytearray(b"ba"), "string"),
        collections.OrderedDict(a=[1, 2], b={"c": (3,)}),
        {"gen": (i for i in range(3)), "keys": {"a": 1}.keys(), "set": frozenset({1})},
        collections.Counter(a=2),
        "plain",
        42,
        None,
    ],
)
def test_dump_compatible_gives_what_the_sdk_gives(value: Any) -> None:
    def fresh() -> Any:
        # Generators are spent by one walk: rebuild the value for each function.
        if isinstance(value, dict) and "gen" in value:
            return {"gen": (i for i in range(3)), "keys": {"a": 1}.keys(), "set": frozenset({1})}
        return value

    ours, theirs = dump_compatible(fresh()), sdk_dump(fresh())
    assert ours == theirs
    assert type(ours) is type(theirs)


def test_the_sdk_dumps_through_the_replacement() -> None:
    from agents.util import _json

    assert _json._to_dump_compatible_internal is dump_compatible
    assert _json._to_dump_compatible({"a": (1, 2)}) == {"a": [1, 2]}


def test_identity_map_of_unique_names_is_the_name_of_each_agent() -> None:
    helper = Agent(name="helper", instructions="help")
    root = Agent(name="root", instructions="route", handoffs=[helper, handoff(helper)])
    identity = importlib.import_module("agents._run_state_agent_identity")
    ours = agent_identity_map(root)
    theirs = sdk_fastpaths._sdk_identity_map(root)  # type: ignore[misc]
    assert list(ours.items()) == list(theirs.items())
    assert list(ours) == ["root", "helper"]
    assert identity._build_agent_identity_keys_by_id(root) == {
        id(root): "root",
        id(helper): "helper",
    }


def test_identity_map_with_a_shared_name_is_the_sdks() -> None:
    twin_a = Agent(name="twin", instructions="first")
    twin_b = Agent(name="twin", instructions="second")
    root = Agent(name="root", instructions="route", handoffs=[twin_b, twin_a])
    ours = agent_identity_map(root)
    theirs = sdk_fastpaths._sdk_identity_map(root)  # type: ignore[misc]
    assert list(ours) == ["root", "twin", "twin#2"]
    assert ours == theirs


def test_the_sdk_looks_the_identity_map_up_through_the_replacement() -> None:
    """Fails when an openai-agents release moves these names: raise the pin only with a look."""
    for name in IDENTITY_MODULES:
        module = importlib.import_module(name)
        assert module._build_agent_identity_map is agent_identity_map, name
    tracker = inspect.getsource(importlib.import_module("agents.run_internal.tool_use_tracker"))
    assert "_build_agent_identity_keys_by_id(starting_agent)" in tracker
    keys = inspect.getsource(importlib.import_module(IDENTITY_MODULES[0]))
    assert "_build_agent_identity_map(initial_agent).items()" in keys
    chat = inspect.getsource(importlib.import_module("agents.models.openai_chatcompletions"))
    assert chat.count("_to_dump_compatible(") >= 2
