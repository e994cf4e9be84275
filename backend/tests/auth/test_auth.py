"""Sign-up, sign-in and token verification (HS256)."""

from __future__ import annotations

import uuid

import jwt
import pytest

from tests.conftest import TEST_SECRET, User


def _email() -> str:
    return f"ada-{uuid.uuid4().hex[:8]}@example.com"


async def test_signup_then_signin_then_use_the_token(client) -> None:
    email = _email()
    r = await client.post(
        "/api/auth/signup", json={"email": email, "password": "correct horse", "name": "Ada"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7 * 24 * 3600
    assert body["user"]["email"] == email and body["user"]["name"] == "Ada"
    user_id = body["user"]["id"]
    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user_id

    r = await client.post(
        "/api/auth/signin", json={"email": email.upper(), "password": "correct horse"}
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    r = await client.post(
        f"/api/{user_id}/tasks",
        json={"title": "Hello"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201


async def test_duplicate_email_is_409(client) -> None:
    email = _email()
    body = {"email": email, "password": "password123"}
    assert (await client.post("/api/auth/signup", json=body)).status_code == 201
    r = await client.post("/api/auth/signup", json={**body, "email": email.upper()})
    assert r.status_code == 409
    assert r.json() == {"detail": "An account with this email already exists"}


async def test_wrong_password_and_unknown_email_get_the_same_401(client) -> None:
    email = _email()
    await client.post("/api/auth/signup", json={"email": email, "password": "password123"})
    wrong = await client.post("/api/auth/signin", json={"email": email, "password": "nope-nope"})
    unknown = await client.post(
        "/api/auth/signin", json={"email": _email(), "password": "password123"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Invalid email or password"}
    assert wrong.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "sign_in_status"),
    [
        ({"email": "not-an-email", "password": "password123"}, 422),
        # Sign-in has no minimum length: no such user, so 401.
        ({"email": "a@example.com", "password": "short"}, 401),
        ({"email": "a@example.com", "password": "x" * 129}, 422),
        ({"email": "a@example.com"}, 422),
        ({"email": "a@example.com", "password": "password123", "id": "chosen-id"}, 401),
    ],
)
async def test_invalid_signup_is_422_and_creates_nothing(client, body, sign_in_status) -> None:
    r = await client.post("/api/auth/signup", json=body)
    assert r.status_code == 422
    assert "password123" not in r.text and "short" not in r.text.replace("too_short", "")
    # Nobody was created: signing in with the same email and password does not work.
    r = await client.post(
        "/api/auth/signin", json={"email": body["email"], "password": body.get("password", "")}
    )
    assert r.status_code == sign_in_status


async def test_token_of_user_never_signed_up_here_is_enough(client) -> None:
    user = User()  # a Better Auth user: no row in our users table
    r = await client.post(
        user.url("/tasks"), json={"title": "From Better Auth"}, headers=user.headers
    )
    assert r.status_code == 201
