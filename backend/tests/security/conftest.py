"""Fixtures of the attack suite: an app whose model is a scripted fake upstream on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from bench.fake_upstream import FakeUpstream

from tests.conftest import RunningApp, make_settings, start_app


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
async def scripted_app(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[RunningApp]:
    """The real agent path (Agents SDK, MCP tools) driven by a model whose moves we script."""
    settings = make_settings(
        database_url,
        model_provider="openai",
        openai_api_key="test",
        openai_base_url=fake_upstream.base_url,
        # The attacks here aim a hundred calls at other users' ids in one turn; the cap that
        # would cut them short has tests of its own (test_limits.py).
        agent_max_tool_calls=500,
    )
    running = await start_app(settings)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The fake model, reset for one test; the test fails if a scripted move was never used."""
    behaviour = fake_upstream.behaviour
    behaviour.script.clear()
    behaviour.requests.clear()
    behaviour.record_requests = True
    yield fake_upstream
    leftover = list(behaviour.script)
    behaviour.script.clear()
    behaviour.record_requests = False
    assert not leftover, f"scripted model moves never used: {leftover}"
