"""Fixtures of the attack suite: an app whose model is a scripted fake upstream on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes.openai_upstream import FakeUpstream

from tests.conftest import RunningApp, make_settings, start_app


@pytest.fixture(scope="session")
async def scripted_app(database_url: str, fake_upstream: FakeUpstream) -> AsyncIterator[RunningApp]:
    """The real agent path (Agents SDK, MCP tools) driven by a model whose moves we script."""
    settings = make_settings(
        database_url,
        model_provider="openai",
        openai_api_key="test",
        openai_base_url=fake_upstream.base_url,
    )
    running = await start_app(settings)
    try:
        yield running
    finally:
        await running.stop()
