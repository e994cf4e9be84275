"""Issuing our HS256 tokens and verifying every kind of token we accept.

Algorithms are pinned per key type: HS256 with the shared secret (ours and Better Auth's), and
EdDSA / RS256 / ES256 from the JWKS when `JWT_JWKS_URL` is set. The header's `alg` only selects
which pinned verifier runs; it never widens what is accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from todochat.config import Settings
from todochat.errors import InvalidToken
from todochat.schemas import has_bad_characters

log = logging.getLogger("todochat.auth")

ASYMMETRIC_ALGORITHMS = ("EdDSA", "RS256", "ES256")
_JWKS_MAX_AGE_S = 300.0


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: only `id` (the token's `sub`) is ever trusted."""

    id: str
    email: str | None = None
    expires_at: int | None = None
    # The token's `aud`, and for an OAuth access token of this service the grant it belongs to.
    audiences: tuple[str, ...] = ()
    grant_id: str | None = None


# The claim naming the OAuth grant (oauth/service.py) of an access token this service issued.
GRANT_CLAIM = "todochat_grant"


def issue_token(*, settings: Settings, user_id: str, email: str) -> tuple[str, int]:
    now = int(time.time())
    ttl = settings.access_token_ttl_s
    claims: dict[str, Any] = {
        "sub": user_id,
        "email": email,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256"), ttl


class JWKSCache:
    """Keys from the JWKS URL, fetched asynchronously, kept for `_JWKS_MAX_AGE_S`.

    An unknown `kid` usually means the issuer rotated its keys, so it triggers one refetch at
    once; after that, unknown kids wait out `cooldown_s` before the next one, so a stream of
    made-up kids costs at most one fetch per cooldown. A failed fetch keeps the keys we had.
    """

    def __init__(self, url: str, *, cooldown_s: float, timeout_s: float = 5.0) -> None:
        self.url = url
        self.cooldown_s = cooldown_s
        self.timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_unknown_kid_fetch: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < _JWKS_MAX_AGE_S

    def _recent(self, at: float | None, now: float) -> bool:
        return at is not None and now - at < self.cooldown_s

    async def get(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        if kid in self._keys and self._fresh(now):
            return self._keys[kid]
        async with self._lock:
            now = time.monotonic()
            if kid in self._keys and self._fresh(now):
                return self._keys[kid]  # another request refreshed while we waited
            if self._recent(self._last_attempt, now) and self._fetched_at != self._last_attempt:
                return self._keys.get(kid)  # the last attempt failed: do not hammer the issuer
            if not self._fresh(now):
                await self._refresh(now)
            elif kid not in self._keys and not self._recent(self._last_unknown_kid_fetch, now):
                self._last_unknown_kid_fetch = now
                await self._refresh(now)
            return self._keys.get(kid)

    async def _refresh(self, now: float) -> None:
        self._last_attempt = now
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, jwt.PyJWKSetError, ValueError) as exc:
            log.warning("JWKS fetch failed", extra={"error_type": type(exc).__name__})
            return
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
        self._fetched_at = now


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks = (
            JWKSCache(settings.jwt_jwks_url, cooldown_s=settings.jwt_jwks_cooldown_s)
            if settings.jwt_jwks_url
            else None
        )

    async def verify(self, token: str) -> Principal:
        if not token or len(token) > self.settings.max_token_bytes:
            raise InvalidToken()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        alg = header.get("alg")
        if alg == "HS256":
            key: Any = self.settings.jwt_secret
            algorithms = ["HS256"]
        elif alg in ASYMMETRIC_ALGORITHMS and self.jwks is not None:
            kid = header.get("kid")
            jwk = await self.jwks.get(kid) if isinstance(kid, str) else None
            if jwk is None or jwk.algorithm_name != alg:
                raise InvalidToken()
            key, algorithms = jwk.key, [alg]
        else:
            raise InvalidToken()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.settings.jwt_audience is not None,
                },
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        sub = claims.get("sub")
        # The subject becomes a column value: one PostgreSQL cannot store (NUL) would fail every
        # query of the request, so such a token is as invalid as a forged one.
        if not isinstance(sub, str) or not sub.strip() or len(sub) > 255 or has_bad_characters(sub):
            raise InvalidToken()
        # PyJWT has checked that `exp` and any `iat` read as integers. Without `iat`, the
        # lifetime left counts: a token must not outlive the maximum from now on either.
        issued_at = int(claims["iat"]) if "iat" in claims else int(time.time())
        if int(claims["exp"]) - issued_at > self.settings.max_token_lifetime_s:
            raise InvalidToken()
        email = claims.get("email")
        exp = claims.get("exp")
        aud = claims.get("aud")
        listed = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        audiences = tuple(a for a in listed if isinstance(a, str))
        # Only our own secret makes a grant claim ours: another issuer's tokens never carry one.
        grant = claims.get(GRANT_CLAIM) if alg == "HS256" else None
        return Principal(
            id=sub,
            email=email if isinstance(email, str) else None,
            expires_at=exp if isinstance(exp, int) else None,
            audiences=audiences,
            grant_id=grant if isinstance(grant, str) else None,
        )
