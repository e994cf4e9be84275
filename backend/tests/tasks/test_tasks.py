"""The task routes of the contract, on both engines."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.conftest import User


async def _create(client: httpx.AsyncClient, user: User, title: str, **extra: object) -> dict:
    r = await client.post(user.url("/tasks"), json={"title": title, **extra}, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _titles(client: httpx.AsyncClient, user: User, status: str = "all") -> list[str]:
    r = await client.get(user.url(f"/tasks?status={status}"), headers=user.headers)
    assert r.status_code == 200
    return [t["title"] for t in r.json()]


async def test_create_returns_task_with_timezone_aware_times(client, user) -> None:
    task = await _create(client, user, "  Buy groceries  ", description="milk")
    assert task["title"] == "Buy groceries"
    assert task["description"] == "milk"
    assert task["completed"] is False
    assert task["user_id"] == user.id
    assert isinstance(task["id"], int)
    for field in ("created_at", "updated_at"):
        assert datetime.fromisoformat(task[field]).tzinfo is not None


async def test_list_is_newest_first_and_filters_by_status(client, user) -> None:
    first = await _create(client, user, "First")
    await _create(client, user, "Second")
    await _create(client, user, "Third")
    r = await client.patch(user.url(f"/tasks/{first['id']}/complete"), headers=user.headers)
    assert r.status_code == 200
    assert await _titles(client, user) == ["Third", "Second", "First"]
    assert await _titles(client, user, "pending") == ["Third", "Second"]
    assert await _titles(client, user, "completed") == ["First"]


async def test_lists_come_in_pages_linked_by_an_opaque_cursor(client, user) -> None:
    ids = [(await _create(client, user, f"t{i}"))["id"] for i in range(7)]
    r = await client.patch(user.url(f"/tasks/{ids[5]}/complete"), headers=user.headers)
    assert r.status_code == 200
    seen: list[int] = []
    url = user.url("/tasks?limit=3")
    pages = 0
    while url:
        r = await client.get(url, headers=user.headers)
        assert r.status_code == 200
        pages += 1
        seen += [t["id"] for t in r.json()]
        cursor = r.headers.get("x-next-cursor")
        link = r.headers.get("link")
        if cursor is None:
            assert link is None
            break
        assert str(ids[0]) not in cursor  # opaque, not an id
        # The Link header is the next page's address, relative to this one.
        assert link == f'<{user.url("/tasks")}?status=all&limit=3&cursor={cursor}>; rel="next"'
        url = link[1:].split(">", 1)[0]
    assert pages == 3 and seen == ids[::-1]
    # The filter holds across pages; the last page has no cursor.
    r = await client.get(user.url("/tasks?status=pending&limit=3"), headers=user.headers)
    assert [t["id"] for t in r.json()] == [ids[6], ids[4], ids[3]]
    r = await client.get(
        user.url(f"/tasks?status=pending&limit=3&cursor={r.headers['x-next-cursor']}"),
        headers=user.headers,
    )
    assert [t["id"] for t in r.json()] == [ids[2], ids[1], ids[0]]
    assert "x-next-cursor" not in r.headers
    # Exactly a page's worth: no next page.
    r = await client.get(user.url("/tasks?limit=7"), headers=user.headers)
    assert len(r.json()) == 7 and "x-next-cursor" not in r.headers and "link" not in r.headers


async def test_a_page_has_100_tasks_unless_asked_and_never_more_than_500(client, user) -> None:
    for i in range(101):
        await _create(client, user, f"t{i}")
    r = await client.get(user.url("/tasks"), headers=user.headers)
    assert len(r.json()) == 100 and r.json()[0]["title"] == "t100"
    rest = await client.get(
        user.url(f"/tasks?cursor={r.headers['x-next-cursor']}"), headers=user.headers
    )
    assert [t["title"] for t in rest.json()] == ["t0"]
    r = await client.get(user.url("/tasks?limit=500"), headers=user.headers)
    assert len(r.json()) == 101 and "x-next-cursor" not in r.headers
    for bad in ("limit=501", "limit=0", "limit=-1", "limit=x"):
        r = await client.get(user.url(f"/tasks?{bad}"), headers=user.headers)
        assert r.status_code == 422 and r.json()["detail"].startswith("limit:"), bad


@pytest.mark.parametrize(
    "cursor", ["", "nope", "123", "1AAAAA", "1AAAAAAA", "2AAAAAB", "1AAA=AB", "1AAAA%2BB", "%00"]
)
async def test_a_cursor_of_another_shape_is_422(client, user, cursor) -> None:
    r = await client.get(user.url(f"/tasks?cursor={cursor}"), headers=user.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("cursor:")


async def test_any_cursor_of_the_documented_shape_is_a_position_in_my_own_list(
    client, user, other_user
) -> None:
    mine = (await _create(client, user, "mine"))["id"]
    await _create(client, other_user, "theirs")
    # Past every id, and before the first: my list, or nothing; never another user's tasks.
    for cursor, expected in (("1______", [mine]), ("1AAAAAA", []), ("1AAAAAB", [])):
        r = await client.get(user.url(f"/tasks?cursor={cursor}"), headers=user.headers)
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()] == expected


async def test_unknown_status_filter_is_422(client, user) -> None:
    r = await client.get(user.url("/tasks?status=done"), headers=user.headers)
    assert r.status_code == 422
    assert "status" in r.json()["detail"]


async def test_get_update_and_delete(client, user) -> None:
    task = await _create(client, user, "Call mom")
    r = await client.get(user.url(f"/tasks/{task['id']}"), headers=user.headers)
    assert r.status_code == 200 and r.json()["title"] == "Call mom"

    r = await client.put(
        user.url(f"/tasks/{task['id']}"),
        json={"title": "Call mom tonight", "completed": True},
        headers=user.headers,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "Call mom tonight" and body["completed"] is True
    assert body["updated_at"] >= task["updated_at"]

    r = await client.delete(user.url(f"/tasks/{task['id']}"), headers=user.headers)
    assert r.status_code == 204 and r.content == b""
    r = await client.get(user.url(f"/tasks/{task['id']}"), headers=user.headers)
    assert r.status_code == 404
    assert r.json() == {"detail": f"Task {task['id']} not found"}


async def test_toggle_flips_completion_both_ways(client, user) -> None:
    task = await _create(client, user, "Toggle me")
    url = user.url(f"/tasks/{task['id']}/complete")
    assert (await client.patch(url, headers=user.headers)).json()["completed"] is True
    assert (await client.patch(url, headers=user.headers)).json()["completed"] is False


async def test_put_with_empty_body_changes_nothing_but_is_ok(client, user) -> None:
    task = await _create(client, user, "Keep me", description="as is")
    r = await client.put(user.url(f"/tasks/{task['id']}"), json={}, headers=user.headers)
    assert r.status_code == 200
    assert r.json()["title"] == "Keep me" and r.json()["description"] == "as is"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "ok", "description": "d" * 1001},
        {"title": 5},
        {"title": "ok", "id": 99},
        {"title": "ok", "user_id": "someone-else"},
        {"title": "ok", "created_at": "2020-01-01T00:00:00Z"},
        {"title": "ok", "completed": True},
    ],
)
async def test_invalid_create_is_422_and_writes_nothing(client, user, body) -> None:
    r = await client.post(user.url("/tasks"), json=body, headers=user.headers)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert await _titles(client, user) == []


async def test_malformed_json_is_422(client, user) -> None:
    r = await client.post(
        user.url("/tasks"),
        content=b"{not json",
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert await _titles(client, user) == []


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"description": "d" * 1001},
        {"id": 5},
        {"user_id": "x"},
        {"completed": "maybe"},
    ],
)
async def test_invalid_update_is_422_and_changes_nothing(client, user, body) -> None:
    task = await _create(client, user, "Original")
    r = await client.put(user.url(f"/tasks/{task['id']}"), json=body, headers=user.headers)
    assert r.status_code == 422
    r = await client.get(user.url(f"/tasks/{task['id']}"), headers=user.headers)
    assert r.json() == task


@pytest.mark.parametrize("task_id", ["0", "-1", "abc", str(2**31)])
async def test_invalid_task_id_is_422(client, user, task_id) -> None:
    r = await client.get(user.url(f"/tasks/{task_id}"), headers=user.headers)
    assert r.status_code == 422


async def test_other_users_task_is_404_everywhere_and_unchanged(client, user, other_user) -> None:
    task = await _create(client, user, "Mine")
    tid = task["id"]
    h = other_user.headers
    assert (await client.get(other_user.url(f"/tasks/{tid}"), headers=h)).status_code == 404
    r = await client.put(other_user.url(f"/tasks/{tid}"), json={"title": "pwned"}, headers=h)
    assert r.status_code == 404
    assert (
        await client.patch(other_user.url(f"/tasks/{tid}/complete"), headers=h)
    ).status_code == 404
    assert (await client.delete(other_user.url(f"/tasks/{tid}"), headers=h)).status_code == 404
    assert await _titles(client, other_user) == []
    r = await client.get(user.url(f"/tasks/{tid}"), headers=user.headers)
    assert r.json() == task


async def test_token_for_another_user_on_my_path_is_403(client, user, other_user) -> None:
    await _create(client, user, "Secret")
    r = await client.get(user.url("/tasks"), headers=other_user.headers)
    assert r.status_code == 403
    assert r.json() == {"detail": "You can only access your own resources"}
    r = await client.post(user.url("/tasks"), json={"title": "x"}, headers=other_user.headers)
    assert r.status_code == 403
    assert await _titles(client, user) == ["Secret"]


async def test_missing_task_is_404_with_contract_shape(client, user) -> None:
    r = await client.delete(user.url("/tasks/999999"), headers=user.headers)
    assert r.status_code == 404
    assert r.json() == {"detail": "Task 999999 not found"}


async def test_edit_that_changes_nothing_keeps_updated_at(client, user) -> None:
    task = await _create(client, user, "Same", description="same")
    r = await client.put(
        user.url(f"/tasks/{task['id']}"), json={"title": "Same"}, headers=user.headers
    )
    assert r.json()["updated_at"] == task["updated_at"]
    r = await client.put(
        user.url(f"/tasks/{task['id']}"), json={"description": ""}, headers=user.headers
    )
    assert r.json()["description"] is None
    assert r.json()["updated_at"] > task["updated_at"]


async def test_concurrent_signups_with_one_email_give_one_201_and_409s(client) -> None:
    import asyncio
    import uuid

    body = {"email": f"race-{uuid.uuid4().hex[:8]}@example.com", "password": "password123"}
    answers = await asyncio.gather(*(client.post("/api/auth/signup", json=body) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]


async def test_ids_are_never_reused_after_a_delete(client, user) -> None:
    first = await _create(client, user, "Temporary")
    await client.delete(user.url(f"/tasks/{first['id']}"), headers=user.headers)
    second = await _create(client, user, "Next")
    assert second["id"] > first["id"]
