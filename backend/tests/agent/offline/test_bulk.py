"""Bulk actions of the offline model through the real chat route, on both engines: one tool call
per task through the same Runner and tools, the confirmation before a bulk delete of more than a
handful, and the turn's tool-call cap (AGENT_MAX_TOOL_CALLS) on a bulk action."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import User

CAP = 20  # AGENT_MAX_TOOL_CALLS by default


async def _add(client: httpx.AsyncClient, user: User, title: str) -> int:
    r = await client.post(user.url("/tasks"), json={"title": title}, headers=user.headers)
    assert r.status_code == 201, r.text
    task_id: int = r.json()["id"]
    return task_id


async def _tasks(client: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    r = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()
    return tasks


async def _chat(
    client: httpx.AsyncClient, user: User, message: str, conversation: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    r = await client.post(user.url("/chat"), json=body, headers=user.headers)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_a_bulk_delete_of_more_than_five_asks_and_on_yes_deletes_what_it_named(
    client: httpx.AsyncClient, user: User, other_user: User
) -> None:
    theirs = await _add(client, other_user, "Someone else's task")
    # A title that quotes an id of someone else's task, and the question's own words.
    titles = [f"Ask about #{theirs}", "Say yes to delete them (#1)", *(f"t{i}" for i in range(5))]
    mine = [await _add(client, user, title) for title in titles]

    asked = await _chat(client, user, "delete everything on my list")

    assert [c["name"] for c in asked["tool_calls"]] == ["list_tasks"]
    assert asked["response"].startswith("That would delete 7 tasks:")
    assert "Are you sure?" in asked["response"]
    assert len(await _tasks(client, user)) == 7
    later = await _add(client, user, "Added after the question")

    done = await _chat(client, user, "yes", asked["conversation_id"])

    calls = done["tool_calls"]
    assert [c["name"] for c in calls] == ["delete_task"] * 7
    assert [c["arguments"]["task_id"] for c in calls] == mine
    assert [t["id"] for t in await _tasks(client, user)] == [later]
    assert [t["id"] for t in await _tasks(client, other_user)] == [theirs]
    assert done["response"].startswith("Deleted 7 tasks: 'Ask about #")


async def test_no_to_the_question_deletes_nothing(client: httpx.AsyncClient, user: User) -> None:
    for i in range(6):
        await _add(client, user, f"t{i}")
    before = await _tasks(client, user)

    asked = await _chat(client, user, "wipe my list")
    answer = await _chat(client, user, "no", asked["conversation_id"])

    assert answer["tool_calls"] == []
    assert "left your tasks as they are" in answer["response"]
    assert await _tasks(client, user) == before


async def test_a_handful_of_completed_tasks_is_deleted_without_asking(
    client: httpx.AsyncClient, user: User
) -> None:
    done = [await _add(client, user, f"done {i}") for i in range(5)]
    kept = await _add(client, user, "still to do")
    for task_id in done:
        r = await client.patch(user.url(f"/tasks/{task_id}/complete"), headers=user.headers)
        assert r.status_code == 200

    answer = await _chat(client, user, "delete all the finished ones")

    calls = answer["tool_calls"]
    assert calls[0] == {**calls[0], "name": "list_tasks", "arguments": {"status": "completed"}}
    assert [c["arguments"]["task_id"] for c in calls[1:]] == done
    assert [t["id"] for t in await _tasks(client, user)] == [kept]
    assert answer["response"].startswith("Deleted 5 completed tasks: 'done 0' (#")


async def test_completing_more_tasks_than_a_turn_may_call_says_what_was_not_done(
    client: httpx.AsyncClient, user: User
) -> None:
    ids = [await _add(client, user, f"t{i}") for i in range(CAP + 5)]

    answer = await _chat(client, user, "tick them all off")

    calls = answer["tool_calls"]
    assert [c["name"] for c in calls] == ["list_tasks"] + ["complete_task"] * (CAP - 1)
    completed = {t["id"] for t in await _tasks(client, user) if t["completed"]}
    assert completed == {c["arguments"]["task_id"] for c in calls[1:]}
    assert completed < set(ids)
    assert "Not done: 6 more actions (complete 6 tasks;" in answer["response"]


async def test_a_bulk_add_past_twelve_tasks_is_summed_up(
    client: httpx.AsyncClient, user: User
) -> None:
    answer = await _chat(client, user, "add these: " + ", ".join(f"item {i}" for i in range(15)))

    assert [c["name"] for c in answer["tool_calls"]] == ["add_task"] * 15
    assert len(await _tasks(client, user)) == 15
    assert answer["response"].startswith("Added 15 tasks: 'Item 0' (#")
    assert answer["response"].endswith("and 5 more.")


async def test_several_names_are_completed_one_by_one_but_never_renamed_together(
    client: httpx.AsyncClient, user: User
) -> None:
    milk, eggs = await _add(client, user, "Buy milk"), await _add(client, user, "Buy eggs")

    renamed = await _chat(client, user, "rename milk and eggs to Groceries")
    assert [c["name"] for c in renamed["tool_calls"]] == ["list_tasks"]
    assert sorted(t["title"] for t in await _tasks(client, user)) == ["Buy eggs", "Buy milk"]

    answer = await _chat(client, user, "milk and eggs: done")
    calls = answer["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls[1:]] == [
        ("complete_task", {"task_id": milk}),
        ("complete_task", {"task_id": eggs}),
    ]
    assert all(t["completed"] for t in await _tasks(client, user))
    assert answer["response"].startswith("Marked 2 tasks as done: 'Buy milk' (#")
