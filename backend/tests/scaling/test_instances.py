"""Several instances, one truth: two real `todochat serve` processes on one database (each
engine) and one Redis, with the fake OpenAI upstream as their model.

- A keyed turn whose instance is SIGKILLed mid-turn is taken over by a retry on the other
  instance within 15 s of the kill (the lease's heartbeat, S2), and never adds its task twice.
- A live owner is never taken over, however many times its lease it runs.
- An Idempotency-Key replays across instances; a conversation continues on the other one; the
  rate-limit budget is one across instances; /metrics counts each instance's own work.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.openai_upstream import FakeUpstream

from tests.conftest import User
from tests.served import ServedApp

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/0"


def _model_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test-fake",
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_MODEL": "fake-model",
        **extra,
    }


def _pair(tmp: Path, database_url: str, env: dict[str, str]) -> tuple[ServedApp, ServedApp]:
    # One after the other: the second finds the schema migrated by the first.
    first = ServedApp(tmp / "a", database_url, **env)
    (tmp / "a").mkdir(exist_ok=True)
    first.start()
    second = ServedApp(tmp / "b", database_url, **env)
    (tmp / "b").mkdir(exist_ok=True)
    try:
        second.start()
    except BaseException:
        first.stop()
        raise
    return first, second


async def _tasks(client: httpx.AsyncClient, app: ServedApp, user: User) -> list[str]:
    r = await client.get(app.base_url + user.url("/tasks?limit=500"), headers=user.headers)
    assert r.status_code == 200, r.text
    return [t["title"] for t in r.json()]


async def _messages(
    client: httpx.AsyncClient, app: ServedApp, user: User, conversation_id: int
) -> list[tuple[str, str]]:
    r = await client.get(
        app.base_url + user.url(f"/conversations/{conversation_id}/messages"),
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    return [(m["role"], m["content"]) for m in r.json()]


async def test_a_killed_instances_turn_is_taken_over_on_the_other_within_15_s(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    # Each model call takes 2 s: the turn (tool call, then reply) is 4 s of model time.
    upstream.behaviour.delay_s = 2.0
    owner, other = _pair(tmp_path, database_url, _model_env(upstream))
    user = User()
    body = {"message": "buy oat milk"}
    keyed = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            first = asyncio.create_task(
                client.post(owner.base_url + user.url("/chat"), json=body, headers=keyed)
            )
            # Mid-turn: the tool call has added the task, the model is working on its reply.
            deadline = time.monotonic() + 30
            while "buy oat milk" not in await _tasks(client, other, user):
                assert time.monotonic() < deadline, "the turn never reached its tool call"
                await asyncio.sleep(0.05)
            calls_at_kill = upstream.behaviour.calls
            owner.kill()
            killed = time.monotonic()
            with pytest.raises(httpx.TransportError):
                await first

            async def model_called_again() -> float:
                while upstream.behaviour.calls == calls_at_kill:
                    await asyncio.sleep(0.02)
                return time.monotonic() - killed

            takeover = asyncio.create_task(model_called_again())
            statuses = []
            while True:
                r = await client.post(other.base_url + user.url("/chat"), json=body, headers=keyed)
                statuses.append(r.status_code)
                if r.status_code != 409:
                    break
                # The client does what the 409 says.
                await asyncio.sleep(float(r.headers["Retry-After"]))
            answered = time.monotonic() - killed
            taken_over_after = await asyncio.wait_for(takeover, 1)
            assert r.status_code == 200, r.text
            titles = await _tasks(client, other, user)
            messages = await _messages(client, other, user, r.json()["conversation_id"])
    finally:
        owner.stop()
        other.stop()
    print(
        f"\n[takeover] model called again {taken_over_after:.2f} s after the kill; "
        f"answered {answered:.2f} s after it; statuses {statuses}"
    )
    assert taken_over_after < 15
    # The resumed turn replayed its tool call: the task exists once.
    assert titles.count("buy oat milk") == 1
    assert [role for role, _ in messages] == ["user", "assistant"]


async def test_a_live_owner_is_never_taken_over_and_its_answer_replays_on_the_other(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The turn runs for about 2.5 leases of 2 s; retries on the other instance meanwhile
    are told to wait (409), and once it is done get its answer, replayed."""
    upstream.behaviour.delay_s = 2.5
    env = _model_env(upstream, CHAT_TURN_LEASE_S="2", IDEMPOTENCY_WAIT_S="0.5")
    owner, other = _pair(tmp_path, database_url, env)
    user = User()
    body = {"message": "water the plants"}
    keyed = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            first = asyncio.create_task(
                client.post(owner.base_url + user.url("/chat"), json=body, headers=keyed)
            )
            await asyncio.sleep(0.5)
            busy = 0
            while not first.done():
                r = await client.post(other.base_url + user.url("/chat"), json=body, headers=keyed)
                if first.done() and r.status_code == 200:
                    break
                assert r.status_code == 409, r.text
                assert r.headers["Retry-After"]
                busy += 1
            original = await first
            replay = await client.post(other.base_url + user.url("/chat"), json=body, headers=keyed)
            titles = await _tasks(client, other, user)
    finally:
        owner.stop()
        other.stop()
    assert original.status_code == 200, original.text
    assert busy >= 3
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == original.json()
    # The model ran once (a tool call, then the reply): the other instance never ran the turn.
    assert upstream.behaviour.calls == 2
    assert titles.count("water the plants") == 1


@pytest.fixture(scope="module")
def pair(
    database_url: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServedApp, ServedApp]]:
    env = _model_env(
        fake_upstream,
        REDIS_URL=REDIS_URL,
        # A prefix of this run's own: the budget of these instances, and only theirs.
        RATE_LIMIT_KEY_PREFIX=f"todochat-test-{uuid.uuid4().hex[:8]}",
        RATE_LIMIT_TASK_WRITES="5/minute",
    )
    first, second = _pair(tmp_path_factory.mktemp("pair"), database_url, env)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


async def test_the_rate_limit_budget_is_shared_by_the_instances(
    pair: tuple[ServedApp, ServedApp],
) -> None:
    a, b = pair
    user = User()
    async with httpx.AsyncClient(timeout=30) as client:
        statuses = []
        for i in range(7):
            app = (a, b)[i % 2]
            r = await client.post(
                app.base_url + user.url("/tasks"), json={"title": f"T{i}"}, headers=user.headers
            )
            statuses.append(r.status_code)
        metrics = (await client.get(b.base_url + "/metrics")).text
    # Five a minute in all, whichever instance counts them.
    assert statuses == [201] * 5 + [429] * 2
    assert "todochat_rate_limit_fallback_total 0.0" in metrics or (
        "todochat_rate_limit_fallback_total" not in metrics
    )


async def test_a_conversation_continues_on_the_other_instance(
    pair: tuple[ServedApp, ServedApp], upstream: FakeUpstream
) -> None:
    a, b = pair
    user = User()
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(
            a.base_url + user.url("/chat"), json={"message": "add apples"}, headers=user.headers
        )
        assert first.status_code == 200, first.text
        conversation_id = first.json()["conversation_id"]
        upstream.behaviour.requests.clear()
        second = await client.post(
            b.base_url + user.url("/chat"),
            json={"message": "add pears", "conversation_id": conversation_id},
            headers=user.headers,
        )
        assert second.status_code == 200, second.text
        messages = await _messages(client, a, user, conversation_id)
    # The model on the other instance saw the first turn.
    seen = str(upstream.behaviour.requests[0]["messages"])
    assert "add apples" in seen and first.json()["response"] in seen
    assert messages == [
        ("user", "add apples"),
        ("assistant", first.json()["response"]),
        ("user", "add pears"),
        ("assistant", second.json()["response"]),
    ]


def _ok_turns(metrics: str) -> float:
    found = re.search(r'^todochat_chat_turns_total\{outcome="ok"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def test_metrics_count_each_instances_own_work(
    pair: tuple[ServedApp, ServedApp], upstream: FakeUpstream
) -> None:
    a = pair[0]
    user = User()
    async with httpx.AsyncClient(timeout=30) as client:
        before = [_ok_turns((await client.get(app.base_url + "/metrics")).text) for app in pair]
        for _ in range(2):
            r = await client.post(
                a.base_url + user.url("/chat"), json={"message": "add eggs"}, headers=user.headers
            )
            assert r.status_code == 200, r.text
        after = [_ok_turns((await client.get(app.base_url + "/metrics")).text) for app in pair]
    assert after[0] - before[0] == 2
    assert after[1] == before[1]
