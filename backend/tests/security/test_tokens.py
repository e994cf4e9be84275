"""Forged, expired, confused and oversized tokens (OWASP API2): each is 401, nothing is read.

Every attack has a control beside it: the same construction done right is accepted, so a 401
proves the check under attack, not a broken test.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import TEST_SECRET, RunningApp, User, make_settings, start_app, token_for
from tests.security.support import (
    JWKSServer,
    SigningKey,
    b64json,
    b64url,
    claims,
    hmac_token,
)
from todochat.config import ConfigError, Settings

OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256-0123456789"
ISSUER = "https://auth.todochat.test"
AUDIENCE = "todochat-api"


async def get_tasks(client: httpx.AsyncClient, user_id: str, token: str) -> httpx.Response:
    return await client.get(f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"})


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"detail": "Invalid or expired token"}


def hs256(payload: dict[str, Any], secret: str = TEST_SECRET, **header: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=header or None)


def ed25519_token(header: dict[str, Any], payload: dict[str, Any], key: SigningKey) -> str:
    """EdDSA signed by hand, for headers PyJWT would refuse to write."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    return f"{signing_input}.{b64url(key.private.sign(signing_input.encode()))}"


def unsigned(alg: str, payload: dict[str, Any], signature: str = "") -> str:
    return f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(payload)}.{signature}"


# --- HS256 (the shared secret) ----------------------------------------------------------------


def hs256_attacks(user_id: str) -> dict[str, str]:
    now = int(time.time())
    good = hs256(claims(user_id))
    header, payload, signature = good.split(".")
    return {
        "garbage": "not-a-jwt",
        "two-segments": f"{header}.{payload}",
        "four-segments": f"{good}.{signature}",
        "bad-base64": f"{header}.%%%.{signature}",
        "header-not-json": f"{b64url(b'{nope')}.{payload}.{signature}",
        "alg-none": unsigned("none", claims(user_id)),
        "alg-None": unsigned("None", claims(user_id)),
        "alg-NONE": unsigned("NONE", claims(user_id)),
        "alg-none-with-old-signature": unsigned("none", claims(user_id), signature),
        "alg-missing": f"{b64json({'typ': 'JWT'})}.{payload}.{signature}",
        "alg-HS512-same-secret": jwt.encode(claims(user_id), TEST_SECRET, algorithm="HS512"),
        "alg-HS384-same-secret": jwt.encode(claims(user_id), TEST_SECRET, algorithm="HS384"),
        "alg-swapped-in-header": f"{b64json({'alg': 'HS512', 'typ': 'JWT'})}.{payload}.{signature}",
        "another-secret": hs256(claims(user_id), OTHER_SECRET),
        "empty-secret": hmac_token({"alg": "HS256"}, claims(user_id), b""),
        "signature-stripped": f"{header}.{payload}.",
        "signature-of-another-token": f"{header}.{payload}.{hs256(claims('x')).split('.')[2]}",
        "tampered-payload": f"{header}.{b64json(claims('someone-else'))}.{signature}",
        "tampered-exp": f"{header}.{b64json(claims(user_id, ttl=10**8))}.{signature}",
        "expired": hs256(claims(user_id, ttl=-60)),
        "expired-long-ago": hs256({"sub": user_id, "iat": 0, "exp": 1}),
        "nbf-in-the-future": hs256(claims(user_id, nbf=now + 600)),
        "iat-does-not-save-an-expired-token": hs256(claims(user_id, ttl=-60, iat=now + 3600)),
        "missing-sub": hs256({"exp": now + 3600}),
        "missing-exp": hs256({"sub": user_id}),
        "exp-not-a-number": hs256({"sub": user_id, "exp": "tomorrow"}),
        "empty-sub": hs256({"sub": "", "exp": now + 3600}),
        "blank-sub": hs256({"sub": "   ", "exp": now + 3600}),
        "numeric-sub": hs256({"sub": 12345, "exp": now + 3600}),
        "list-sub": hs256({"sub": [user_id], "exp": now + 3600}),
        "sub-too-long": hs256({"sub": "u" * 256, "exp": now + 3600}),
        "payload-not-an-object": f"{header}.{b64url(b'[1,2]')}.{signature}",
        "oversized": hs256(claims(user_id, padding="x" * 9000)),
        "jwk-embedded-in-header": hmac_token(
            {"alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"attacker-key")}},
            claims(user_id),
            b"attacker-key",
        ),
    }


ATTACKS = list(hs256_attacks("u"))


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_or_invalid_hs256_token_is_401(client, attack: str) -> None:
    user = User()
    assert (await get_tasks(client, user.id, hs256(claims(user.id)))).status_code == 200
    assert_refused(await get_tasks(client, user.id, hs256_attacks(user.id)[attack]))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"],
    ids=["absent", "empty", "scheme-only", "scheme-and-space", "basic", "token", "lowercase"],
)
async def test_missing_or_malformed_authorization_header_is_401(client, authorization) -> None:
    user = User()
    headers = {} if authorization is None else {"Authorization": authorization}
    r = await client.get(user.url("/tasks"), headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"detail": "Not authenticated"}


async def test_a_token_just_under_the_size_limit_is_accepted(client) -> None:
    user = User()
    padded = hs256(claims(user.id, padding="x" * 5000))
    assert len(padded) < 8192
    assert (await get_tasks(client, user.id, padded)).status_code == 200


async def test_the_scheme_is_case_insensitive_and_the_signed_token_works(client) -> None:
    user = User()
    r = await client.get(user.url("/tasks"), headers={"Authorization": f"bearer {user.token}"})
    assert r.status_code == 200


async def test_a_valid_token_for_another_user_is_403_not_a_way_in(client) -> None:
    victim, attacker = User(), User()
    r = await get_tasks(client, victim.id, token_for(attacker.id))
    assert r.status_code == 403


# --- iss / aud, when configured ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def iss_aud_app(database_url: str) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(database_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE))
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"iss": ISSUER},
        {"aud": AUDIENCE},
        {"iss": "https://evil.example", "aud": AUDIENCE},
        {"iss": ISSUER, "aud": "another-api"},
        {"iss": ISSUER, "aud": ["another-api"]},
        {"iss": ISSUER.upper(), "aud": AUDIENCE},
    ],
    ids=["neither", "no-aud", "no-iss", "wrong-iss", "wrong-aud", "wrong-aud-list", "iss-case"],
)
async def test_wrong_or_missing_iss_and_aud_are_401_when_configured(iss_aud_app, extra) -> None:
    user = User()
    async with iss_aud_app.client() as client:
        good = hs256(claims(user.id, iss=ISSUER, aud=AUDIENCE))
        assert (await get_tasks(client, user.id, good)).status_code == 200
        listed = hs256(claims(user.id, iss=ISSUER, aud=["other", AUDIENCE]))
        assert (await get_tasks(client, user.id, listed)).status_code == 200
        assert_refused(await get_tasks(client, user.id, hs256(claims(user.id, **extra))))


async def test_tokens_the_app_issues_carry_the_configured_iss_and_aud(iss_aud_app) -> None:
    async with iss_aud_app.client() as client:
        email = f"iss-{User().id}@example.com"
        r = await client.post("/api/auth/signup", json={"email": email, "password": "password-1"})
        assert r.status_code == 201
        token = r.json()["access_token"]
        payload = jwt.decode(token, TEST_SECRET, algorithms=["HS256"], audience=AUDIENCE)
        assert payload["iss"] == ISSUER
        assert (await get_tasks(client, r.json()["user"]["id"], token)).status_code == 200


# --- JWKS (EdDSA / RS256 / ES256 by kid), served on 127.0.0.1 ----------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "EdDSA": SigningKey("EdDSA", "ed-1"),
        "RS256": SigningKey("RS256", "rsa-1"),
        "ES256": SigningKey("ES256", "ec-1"),
    }


@pytest.fixture(scope="module")
def jwks(keys: dict[str, SigningKey]) -> Iterator[JWKSServer]:
    server = JWKSServer(list(keys.values())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def jwks_app(database_url: str, jwks: JWKSServer) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(database_url, jwt_jwks_url=jwks.url))
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize("alg", ["EdDSA", "RS256", "ES256"])
async def test_jwks_tokens_of_each_algorithm_are_accepted(jwks_app, keys, alg) -> None:
    user = User()
    async with jwks_app.client() as client:
        r = await get_tasks(client, user.id, keys[alg].sign(claims(user.id)))
        assert r.status_code == 200, r.text
        # The shared secret still works beside the JWKS.
        assert (await get_tasks(client, user.id, user.token)).status_code == 200


def jwks_attacks(user_id: str, keys: dict[str, SigningKey]) -> dict[str, str]:
    ed, rsa_key, ec_key = keys["EdDSA"], keys["RS256"], keys["ES256"]
    stranger = SigningKey("EdDSA", "ed-1")  # a key of its own, claiming the issuer's kid
    good = ed.sign(claims(user_id))
    header, _, signature = good.split(".")
    jwks_json = json.dumps({"keys": [k.jwk for k in keys.values()]}).encode()
    return {
        "unknown-kid": SigningKey("EdDSA", "ed-unknown").sign(claims(user_id)),
        "no-kid": jwt.encode(claims(user_id), ed.private, algorithm="EdDSA"),
        "kid-not-a-string": ed25519_token({"alg": "EdDSA", "kid": 1}, claims(user_id), ed),
        "kid-path-traversal": ed.sign(claims(user_id), kid="../../../../etc/passwd"),
        "stranger-key-same-kid": stranger.sign(claims(user_id)),
        "alg-of-another-key-type": jwt.encode(
            claims(user_id), ed.private, "EdDSA", {"kid": rsa_key.kid}
        ),
        "rs256-kid-with-es256": jwt.encode(
            claims(user_id), ec_key.private, "ES256", {"kid": rsa_key.kid}
        ),
        "hs256-with-rsa-public-pem": hmac_token(
            {"alg": "HS256", "kid": rsa_key.kid}, claims(user_id), rsa_key.public_pem()
        ),
        "hs256-with-ed25519-public-pem": hmac_token(
            {"alg": "HS256", "kid": ed.kid}, claims(user_id), ed.public_pem()
        ),
        "hs256-with-the-jwks-document": hmac_token({"alg": "HS256"}, claims(user_id), jwks_json),
        "rs256-header-hmac-signature": hmac_token(
            {"alg": "RS256", "kid": rsa_key.kid}, claims(user_id), rsa_key.public_pem()
        ),
        "ps256-not-pinned": jwt.encode(
            claims(user_id), rsa_key.private, "PS256", {"kid": rsa_key.kid}
        ),
        "es512-not-pinned": jwt.encode(
            claims(user_id), ec.generate_private_key(ec.SECP521R1()), "ES512", {"kid": ec_key.kid}
        ),
        "alg-none-with-kid": unsigned("none", claims(user_id)),
        "expired": ed.sign(claims(user_id, ttl=-60)),
        "nbf-in-the-future": ed.sign(claims(user_id, nbf=int(time.time()) + 600)),
        "missing-sub": ed.sign({"exp": int(time.time()) + 3600}),
        "missing-exp": ed.sign({"sub": user_id}),
        "tampered-payload": f"{header}.{b64json(claims('someone-else'))}.{signature}",
        "jwk-embedded-in-header": stranger.sign(claims(user_id), kid="evil3", jwk=stranger.jwk),
        "oversized": ed.sign(claims(user_id, padding="x" * 9000)),
    }


JWKS_ATTACKS = list(jwks_attacks("u", {k: SigningKey(k, k) for k in ("EdDSA", "RS256", "ES256")}))


@pytest.mark.parametrize("attack", JWKS_ATTACKS)
async def test_forged_or_confused_jwks_token_is_401(jwks_app, keys, attack) -> None:
    user = User()
    async with jwks_app.client() as client:
        assert (await get_tasks(client, user.id, keys["EdDSA"].sign(claims(user.id)))).is_success
        assert_refused(await get_tasks(client, user.id, jwks_attacks(user.id, keys)[attack]))


async def test_without_a_jwks_url_asymmetric_tokens_are_refused(client, keys) -> None:
    user = User()
    for key in keys.values():
        assert_refused(await get_tasks(client, user.id, key.sign(claims(user.id))))


async def _app_on(database_url: str, jwks: JWKSServer, cooldown_s: float) -> RunningApp:
    return await start_app(
        make_settings(database_url, jwt_jwks_url=jwks.url, jwt_jwks_cooldown_s=cooldown_s)
    )


async def test_key_rotation_a_new_kid_is_fetched_and_accepted(database_url) -> None:
    old, new = SigningKey("EdDSA", "2026-01"), SigningKey("EdDSA", "2026-02")
    server = JWKSServer([old]).start()
    running = await _app_on(database_url, server, cooldown_s=30)
    user = User()
    try:
        async with running.client() as client:
            assert (await get_tasks(client, user.id, old.sign(claims(user.id)))).is_success
            assert server.hits == 1
            # The issuer rotates: the new key is published, the old one withdrawn.
            server.keys = [new]
            r = await get_tasks(client, user.id, new.sign(claims(user.id)))
            assert r.status_code == 200, r.text
            assert server.hits == 2
            # The withdrawn key stops working once the cache knows the new set.
            assert_refused(await get_tasks(client, user.id, old.sign(claims(user.id))))
    finally:
        await running.stop()
        server.stop()


async def test_made_up_kids_cost_one_fetch_per_cooldown_not_one_per_request(database_url) -> None:
    key = SigningKey("EdDSA", "k1")
    server = JWKSServer([key]).start()
    running = await _app_on(database_url, server, cooldown_s=0.5)
    user = User()
    try:
        async with running.client() as client:
            assert (await get_tasks(client, user.id, key.sign(claims(user.id)))).is_success
            hits = server.hits
            for i in range(20):
                forged = SigningKey("EdDSA", f"random-{i}").sign(claims(user.id))
                assert_refused(await get_tasks(client, user.id, forged))
            assert server.hits <= hits + 1
            # After the cooldown a newly published key is picked up again.
            await asyncio.sleep(0.6)
            rotated = SigningKey("EdDSA", "k2")
            server.keys = [key, rotated]
            assert (await get_tasks(client, user.id, rotated.sign(claims(user.id)))).is_success
    finally:
        await running.stop()
        server.stop()


async def test_an_unreachable_jwks_refuses_its_tokens_and_keeps_the_shared_secret(
    database_url,
) -> None:
    running = await start_app(
        make_settings(database_url, jwt_jwks_url="http://127.0.0.1:9/jwks", jwt_jwks_cooldown_s=30)
    )
    user = User()
    try:
        async with running.client() as client:
            key = SigningKey("EdDSA", "k")
            started = time.monotonic()
            for _ in range(5):
                assert_refused(await get_tasks(client, user.id, key.sign(claims(user.id))))
            assert time.monotonic() - started < 5
            assert (await get_tasks(client, user.id, user.token)).status_code == 200
    finally:
        await running.stop()


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_key_urls_in_the_token_header_are_never_followed(jwks_app, jwks, header) -> None:
    attacker_key = SigningKey("EdDSA", f"evil-{header}")
    attacker = JWKSServer([attacker_key]).start()
    user = User()
    try:
        async with jwks_app.client() as client:
            token = attacker_key.sign(claims(user.id), **{header: attacker.url})
            assert_refused(await get_tasks(client, user.id, token))
        assert attacker.hits == 0
    finally:
        attacker.stop()


# --- subjects no database column can take ----------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["\u0000", "\ud800", "\u001b"], ids=["nul", "lone-surrogate", "escape"]
)
async def test_a_subject_with_a_bad_character_is_401_on_every_door(client, bad) -> None:
    """A correctly signed token whose `sub` holds a NUL reached PostgreSQL as a user id: every
    request of that token was a 500 (SQLite stored it). Such a subject is no user."""
    clean = User().id
    for sub, expected in ((f"{clean}{bad}x", (401, 401, 401, 401)), (clean, (200, 201, 200, 200))):
        headers = {"Authorization": f"Bearer {hs256(claims(sub))}"}
        path = f"/api/{quote(sub, safe='', errors='surrogatepass')}"
        answers = [
            await client.get(f"{path}/tasks", headers=headers),
            await client.post(f"{path}/tasks", json={"title": "t"}, headers=headers),
            await client.post(f"{path}/chat", json={"message": "hi"}, headers=headers),
            await client.post(
                "http://127.0.0.1/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={**headers, "Accept": "application/json, text/event-stream"},
            ),
        ]
        assert tuple(r.status_code for r in answers) == expected, (sub, [r.text for r in answers])
        if expected[0] == 401:
            for r in answers:
                assert r.json() == {"detail": "Invalid or expired token"}


# --- lifetimes ---------------------------------------------------------------------------------

DAY = 24 * 3600


async def test_a_token_valid_for_longer_than_the_maximum_lifetime_is_401(client) -> None:
    """MAX_TOKEN_LIFETIME_S (30 days by default): a signed token with `exp` 2^63 worked forever."""
    user = User()
    now = int(time.time())
    for payload in (
        {"sub": user.id, "iat": now, "exp": 2**63},
        {"sub": user.id, "iat": now, "exp": now + 31 * DAY},
        {"sub": user.id, "exp": now + 31 * DAY},  # no iat: what is left of it counts
        {"sub": user.id, "iat": now - 40 * DAY, "exp": now + 3600},  # issued for 40 days
    ):
        assert_refused(await get_tasks(client, user.id, hs256(payload)))
    # Control: up to the maximum, with or without iat, and our own 7-day tokens.
    for payload in (
        {"sub": user.id, "iat": now, "exp": now + 29 * DAY},
        {"sub": user.id, "exp": now + 29 * DAY},
        {"sub": user.id, "iat": now - 20 * DAY, "exp": now + 9 * DAY},
        {"sub": user.id, "iat": now, "exp": now + 7 * DAY},
    ):
        assert (await get_tasks(client, user.id, hs256(payload))).status_code == 200, payload


async def test_the_maximum_lifetime_is_a_setting_that_holds_for_jwks_tokens_too(
    database_url, keys, jwks
) -> None:
    settings = make_settings(
        database_url, jwt_jwks_url=jwks.url, max_token_lifetime_s=3600, access_token_ttl_s=900
    )
    running = await start_app(settings)
    user = User()
    try:
        async with running.client() as client:
            # Better Auth's JWT plugin issues 15-minute EdDSA tokens: they keep working.
            short = keys["EdDSA"].sign(claims(user.id, ttl=900))
            assert (await get_tasks(client, user.id, short)).status_code == 200
            assert_refused(
                await get_tasks(client, user.id, keys["EdDSA"].sign(claims(user.id, ttl=7200)))
            )
            # The tokens the service issues itself stay within the maximum.
            email = f"life-{uuid.uuid4().hex[:8]}@example.com"
            r = await client.post(
                "/api/auth/signup", json={"email": email, "password": "correct horse battery"}
            )
            assert r.status_code == 201 and r.json()["expires_in"] == 900
            token, owner = r.json()["access_token"], r.json()["user"]["id"]
            assert (await get_tasks(client, owner, token)).status_code == 200
    finally:
        await running.stop()


def test_a_token_ttl_longer_than_the_maximum_lifetime_does_not_start() -> None:
    with pytest.raises(ConfigError, match="MAX_TOKEN_LIFETIME_S"):
        Settings(_env_file=None, access_token_ttl_s=2 * DAY, max_token_lifetime_s=DAY)  # type: ignore[call-arg]
