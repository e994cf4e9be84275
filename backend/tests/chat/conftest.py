"""Fixtures of the chat tests: the app served over real HTTP, and the AI SDK's own reader."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.npm import require_npm_packages

AI_SDK_DIR = Path(__file__).parent / "ai_sdk"

Reader = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
def ai_sdk_reader() -> Reader:
    """Reads a streamed turn with the `ai` package (read_stream.mjs); never skipped in CI."""
    require_npm_packages(AI_SDK_DIR)

    async def read(
        *,
        api: str,
        token: str,
        message: str,
        conversation_id: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        request = {
            "api": api,
            "token": token,
            "message": message,
            "conversationId": conversation_id,
            "idempotencyKey": idempotency_key,
        }
        process = await asyncio.create_subprocess_exec(
            "node",
            "read_stream.mjs",
            cwd=AI_SDK_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), 60)
        assert process.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out)
        return result

    return read
