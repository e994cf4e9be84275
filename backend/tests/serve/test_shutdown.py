"""SIGTERM to a real `todochat serve` process (uvicorn) in the middle of a chat turn: the turn
finishes, new connections are refused, the pool is disposed, the process exits; a turn longer
than SHUTDOWN_TIMEOUT_S does not hold the exit up. Its stdout is checked line by line: JSON,
the context fields, and no secret."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.openai_upstream import FakeUpstream

from tests.conftest import TEST_SECRET, User
from tests.faults import free_port
from tests.served import served_env

pytestmark = pytest.mark.slow

API_KEY = "sk-test-shutdown-key-never-in-logs"


class Served:
    def __init__(self, tmp: Path, upstream: FakeUpstream, grace_s: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = served_env(
            f"sqlite+aiosqlite:///{tmp}/served.db",
            MODEL_PROVIDER="openai",
            OPENAI_API_KEY=API_KEY,
            OPENAI_BASE_URL=upstream.base_url,
            OPENAI_TIMEOUT_S="30",
            SHUTDOWN_TIMEOUT_S=str(grace_s),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "todochat.cli", "serve", "--port", str(self.port)],
            cwd=tmp,  # no stray .env
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    async def wait_ready(self) -> None:
        # An import of the app takes seconds, and a busy machine's several times more.
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.base) as c:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()  # type: ignore[union-attr]
                try:
                    if (await c.get("/health/live")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("server did not start")

    def output(self) -> tuple[str, str]:
        out, err = self.proc.communicate(timeout=15)
        return out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Both servers boot at once (an import of the app takes seconds); each test stops one."""
    fast, slow = FakeUpstream(delay_s=0.8).start(), FakeUpstream(delay_s=20).start()
    started = {
        # A turn is two model calls of 0.8 s: it fits easily in a 10 s grace period.
        "graceful": Served(tmp_path_factory.mktemp("graceful"), fast, grace_s=10),
        # A turn of 40 s against a grace period of 1 s.
        "bounded": Served(tmp_path_factory.mktemp("bounded"), slow, grace_s=1),
    }
    try:
        yield started
    finally:
        for served in started.values():
            served.kill()
        fast.stop()
        slow.stop()


async def test_sigterm_lets_the_turn_finish_then_disposes_the_pool(servers) -> None:
    served = servers["graceful"]
    user = User()
    message = "add renew the car insurance"
    try:
        await served.wait_ready()
        async with httpx.AsyncClient(base_url=served.base, timeout=20) as c:
            turn = asyncio.create_task(
                c.post(user.url("/chat"), json={"message": message}, headers=user.headers)
            )
            await asyncio.sleep(0.4)  # the turn is in flight
            signalled = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            with pytest.raises(httpx.ConnectError):  # no new connections once draining
                await httpx.AsyncClient(base_url=served.base).get("/health/live")
            r = await turn
        assert r.status_code == 200, r.text
        assert r.json()["tool_calls"][0]["result"]["status"] == "created"
        served.proc.wait(timeout=15)
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert served.proc.returncode in (0, -signal.SIGTERM)
        assert time.monotonic() - signalled < 10
        out, err = served.output()
    finally:
        served.kill()

    lines = [json.loads(line) for line in out.splitlines() if line.strip()]  # all JSON
    messages = [line["message"] for line in lines]
    assert "chat turn" in messages
    assert messages.index("chat turn") < messages.index("shutdown complete: database pool disposed")
    access = next(
        line
        for line in lines
        if line.get("operation") == "http.request" and line.get("route") == "/api/{user_id}/chat"
    )
    assert access["status"] == 200 and access["user_id"] == user.id
    assert access["conversation_id"] == r.json()["conversation_id"]
    assert access["request_id"] == r.headers["X-Request-ID"] and access["duration_ms"] > 1000
    for secret in (API_KEY, TEST_SECRET, user.token, message):
        assert secret not in out and secret not in err


async def test_a_turn_longer_than_the_grace_period_does_not_hold_the_exit(servers) -> None:
    served = servers["bounded"]
    user = User()
    try:
        await served.wait_ready()
        async with httpx.AsyncClient(base_url=served.base, timeout=30) as c:
            turn = asyncio.create_task(
                c.post(user.url("/chat"), json={"message": "add wait"}, headers=user.headers)
            )
            await asyncio.sleep(0.4)
            signalled = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(served.proc.wait, 15)
            exited_after = time.monotonic() - signalled
            with pytest.raises(httpx.HTTPError):
                (await turn).raise_for_status()
        assert exited_after < 5
        out, _ = served.output()
        assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in out
        assert "shutdown complete: database pool disposed" in out
    finally:
        served.kill()
