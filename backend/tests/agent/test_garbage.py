"""A chat turn leaves no reference cycles behind (P20).

Everything a turn allocates should go with its last reference. What is caught in a cycle waits
for the cyclic collector instead, and each collection stops the worker while it walks the
young objects: 30 to 90 ms under load, every few seconds, on every turn in flight. Two cycles
came back every turn: tenacity's retrying object (one per unit of work) and the Agents SDK's
clean-up closure on a streamed result (a private attribute, cleared in agent/runner.py; this
test is its guard). The test client's own objects (httpx) are left out.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from types import CodeType, CoroutineType, FrameType, FunctionType

import httpx
from fakes.openai_upstream import FakeUpstream

from tests.conftest import User, openai_settings, start_app

# Packages the server runs in a turn; the test's own client (httpx) is not among them.
SERVER_PACKAGES = {
    "todochat",
    "agents",
    "openai",
    "httpx2",
    "aiohttp",
    "tenacity",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "starlette",
    "fastapi",
    "mcp",
    "pydantic",
}


def _package_of(obj: object) -> str:
    code: CodeType | None = None
    if isinstance(obj, FunctionType):
        code = obj.__code__
    elif isinstance(obj, CoroutineType):
        code = obj.cr_code
    elif isinstance(obj, FrameType):
        code = obj.f_code
    if code is not None:
        parts = code.co_filename.replace("\\", "/").split("/")
        if "site-packages" in parts:
            return parts[parts.index("site-packages") + 1]
        return "todochat" if "todochat" in parts else ""
    return type(obj).__module__.split(".")[0]


async def _turns(c: httpx.AsyncClient, user: User) -> None:
    r = await c.post(user.url("/chat"), json={"message": "add task milk"}, headers=user.headers)
    assert r.status_code == 200
    cid = r.json()["conversation_id"]
    async with c.stream(
        "POST",
        user.url("/chat/stream"),
        json={"message": "add task bread", "conversation_id": cid},
        headers=user.headers,
    ) as s:
        assert s.status_code == 200
        lines = [line async for line in s.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2].removeprefix("data: "))["type"] == "finish"


async def test_json_and_streamed_turns_leave_no_cycles_for_the_collector(
    upstream: FakeUpstream, database_url: str
) -> None:
    upstream.behaviour.reply_text = "Done: one task added, and here is a longer reply to stream"
    running = await start_app(openai_settings(database_url, upstream.base_url))
    user = User()
    try:
        async with running.client() as c:
            await _turns(c, user)  # first turns: caches, prepared statements, pools
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(3):
                    await _turns(c, user)
                gc.collect()
                left = Counter(
                    f"{type(o).__module__}.{type(o).__qualname__}"
                    for o in gc.garbage
                    if _package_of(o) in SERVER_PACKAGES
                )
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
        assert not left, left.most_common(10)
        tasks = (await running.client().get(user.url("/tasks"), headers=user.headers)).json()
        assert len(tasks) == 8  # each turn did its work: two tasks a round, four rounds
    finally:
        await running.stop()
