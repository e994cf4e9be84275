"""Runs natural-language cases (the shared acceptance format) through the real chat route."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent


def load_cases(name: str) -> list[dict[str, Any]]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _norm(title: str) -> str:
    return title.strip().rstrip(".").strip().lower()


def _subst(text: str, ids: dict[str, int]) -> str:
    return re.sub(r"\$(\d+)", lambda m: str(ids[f"${m.group(1)}"]), text)


async def run_case(client: httpx.AsyncClient, user: Any, case: dict[str, Any]) -> list[str]:
    """Play one case; return the list of failed expectations (empty when it passed)."""
    h = user.headers
    ids: dict[str, int] = {}
    for n, given in enumerate(case["given"], start=1):
        done = given.startswith("[x] ")
        title = given[4:] if done else given
        r = await client.post(user.url("/tasks"), json={"title": title}, headers=h)
        r.raise_for_status()
        ids[f"${n}"] = r.json()["id"]
        if done:
            (
                await client.patch(user.url(f"/tasks/{ids[f'${n}']}/complete"), headers=h)
            ).raise_for_status()

    says = case["say"] if isinstance(case["say"], list) else [case["say"]]
    conversation_id = None
    # "unchanged" covers the whole case: "add X" then "delete that" leaves the list as it was.
    before = (await client.get(user.url("/tasks"), headers=h)).json()
    answer: dict[str, Any] = {}
    for say in says:
        body: dict[str, Any] = {"message": _subst(say, ids)}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        r = await client.post(user.url("/chat"), json=body, headers=h)
        if r.status_code != 200:
            return [f"chat answered {r.status_code}: {r.text}"]
        answer = r.json()
        conversation_id = answer["conversation_id"]
    after = (await client.get(user.url("/tasks"), headers=h)).json()
    by_id = {t["id"]: t for t in after}
    expect = case["expect"]
    reply = answer["response"]
    calls = answer["tool_calls"]
    names = [c["name"] for c in calls]
    failures: list[str] = []

    want = list(expect.get("tools", []))
    it = iter(names)
    if not all(any(n == w for n in it) for w in want):
        failures.append(f"tools {names} lack {want} in order")
    for title in expect.get("added", []):
        if _norm(title) not in {_norm(t["title"]) for t in after}:
            failures.append(f"no task titled {title!r} in {[t['title'] for t in after]}")
    for ph in expect.get("completed", []):
        task = by_id.get(ids[ph])
        if task is None or not task["completed"]:
            failures.append(f"{ph} not completed")
    for ph in expect.get("deleted", []):
        if ids[ph] in by_id:
            failures.append(f"{ph} not deleted")
    for ph, title in expect.get("renamed", {}).items():
        task = by_id.get(ids[ph])
        if task is None or _norm(task["title"]) != _norm(title):
            failures.append(f"{ph} not renamed to {title!r}: {task}")
    if expect.get("unchanged") and before != after:
        failures.append("tasks changed")
    for word in expect.get("mentions", []):
        if _subst(word, ids).lower() not in reply.lower():
            failures.append(f"reply lacks {word!r}: {reply!r}")
    if "list_status" in expect:
        statuses = [c["arguments"].get("status", "all") for c in calls if c["name"] == "list_tasks"]
        if expect["list_status"] not in statuses:
            failures.append(f"list_tasks status {statuses}, wanted {expect['list_status']}")
    for call in calls:
        if {"id", "name", "arguments", "result"} - set(call):
            failures.append(f"tool call lacks fields: {call}")
    return failures
