"""The provider's token part: a code buys an access token and a refresh token, a refresh token
buys the next pair once (rotation), and a replayed code or refresh token, or a revoked token,
revokes its whole grant."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken, AuthorizationCode, RefreshToken, TokenError
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.auth.tokens import GRANT_CLAIM, TokenVerifier
from todochat.config import Settings
from todochat.db import Database
from todochat.errors import InvalidToken
from todochat.models import OAuthCode, OAuthGrant, OAuthRefreshToken, utcnow
from todochat.oauth import repository
from todochat.oauth.rules import hash_secret
from todochat.oauth.schemas import GrantCode, GrantRefreshToken

_MAX_SECRET = 256


class TokenPart:
    """Codes, refresh tokens and access tokens, for `OAuthProvider`."""

    database: Database
    settings: Settings
    verifier: TokenVerifier
    resource_url: Callable[[], str]

    # --- codes -----------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> GrantCode | None:
        if not authorization_code or len(authorization_code) > _MAX_SECRET:
            return None
        code_hash = hash_secret(authorization_code)

        async def work(session: AsyncSession) -> tuple[OAuthCode, OAuthGrant] | None:
            code = await repository.get_code(session, code_hash=code_hash)
            if code is None:
                return None
            if code.used_at is not None:
                # A replayed code: whoever holds it may have stolen it, so what it bought goes.
                await repository.revoke_grant(session, grant_id=code.grant_id, now=utcnow())
                return None
            grant = await repository.get_live_grant(session, grant_id=code.grant_id)
            return (code, grant) if grant is not None else None

        found = await self.database.run(work)
        if found is None:
            return None
        code, grant = found
        return GrantCode(
            code=authorization_code,
            scopes=grant.scopes.split(),
            expires_at=code.expires_at.timestamp(),
            client_id=grant.client_id,
            code_challenge=code.code_challenge,
            redirect_uri=AnyUrl(code.redirect_uri),
            redirect_uri_provided_explicitly=True,
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: GrantCode
    ) -> OAuthToken:
        code_hash = hash_secret(authorization_code.code)

        async def work(session: AsyncSession) -> str | None:
            now = utcnow()
            if not await repository.spend_code(session, code_hash=code_hash, now=now):
                return None  # another request spent it first, or it just expired
            return await self._new_refresh_token(session, authorization_code.grant_id, now)

        refresh = await self.database.run(work)
        if refresh is None:
            raise TokenError("invalid_grant", "authorization code is no longer valid")
        return self._tokens(authorization_code, authorization_code.grant_id, refresh)

    # --- refresh tokens --------------------------------------------------------------------

    async def _new_refresh_token(self, session: AsyncSession, grant_id: str, now: datetime) -> str:
        token = secrets.token_urlsafe(32)
        ttl = timedelta(seconds=self.settings.oauth_refresh_token_ttl_s)
        row = OAuthRefreshToken(
            token_hash=hash_secret(token), grant_id=grant_id, expires_at=now + ttl
        )
        await repository.add(session, row)
        return token

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> GrantRefreshToken | None:
        if not refresh_token or len(refresh_token) > _MAX_SECRET:
            return None
        token_hash = hash_secret(refresh_token)

        async def work(session: AsyncSession) -> tuple[OAuthRefreshToken, OAuthGrant] | None:
            row = await repository.get_refresh_token(session, token_hash=token_hash)
            if row is None:
                return None
            if row.used_at is not None:
                # Reused after rotation: one of the two holders is not the client.
                await repository.revoke_grant(session, grant_id=row.grant_id, now=utcnow())
                return None
            grant = await repository.get_live_grant(session, grant_id=row.grant_id)
            return (row, grant) if grant is not None else None

        found = await self.database.run(work)
        if found is None:
            return None
        row, grant = found
        return GrantRefreshToken(
            token=refresh_token,
            client_id=grant.client_id,
            scopes=grant.scopes.split(),
            expires_at=int(row.expires_at.timestamp()),
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
        )

    async def exchange_refresh_token(
        self,
        client: OAuthClientInformationFull,
        refresh_token: GrantRefreshToken,
        scopes: list[str],
    ) -> OAuthToken:
        token_hash = hash_secret(refresh_token.token)
        grant_id = refresh_token.grant_id

        async def work(session: AsyncSession) -> str | None:
            now = utcnow()
            if not await repository.spend_refresh_token(session, token_hash=token_hash, now=now):
                # Two uses racing: the loser is a reuse like any other.
                await repository.revoke_grant(session, grant_id=grant_id, now=now)
                return None
            return await self._new_refresh_token(session, grant_id, now)

        refresh = await self.database.run(work)
        if refresh is None:
            raise TokenError("invalid_grant", "refresh token is no longer valid")
        return self._tokens(refresh_token, grant_id, refresh, scopes=scopes)

    # --- access tokens ---------------------------------------------------------------------

    def _tokens(
        self,
        granted: AuthorizationCode | RefreshToken,
        grant_id: str,
        refresh: str,
        *,
        scopes: list[str] | None = None,
    ) -> OAuthToken:
        now = int(time.time())
        ttl = self.settings.oauth_access_token_ttl_s
        resource = granted.resource or self.resource_url()
        audiences = [resource]
        if self.settings.jwt_audience:
            audiences.append(self.settings.jwt_audience)  # what every verified token must name
        scope = " ".join(scopes if scopes is not None else granted.scopes)
        claims: dict[str, Any] = {
            "sub": granted.subject,
            "aud": audiences,
            "client_id": granted.client_id,
            "scope": scope,
            GRANT_CLAIM: grant_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
        }
        if self.settings.jwt_issuer:
            claims["iss"] = self.settings.jwt_issuer
        access = jwt.encode(claims, self.settings.jwt_secret, algorithm="HS256")
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=ttl,
            refresh_token=refresh,
            scope=scope or None,
        )

    async def grant_is_live(self, grant_id: str) -> bool:
        grant = await self.database.run(repository.get_live_grant, grant_id=grant_id)
        return grant is not None

    async def load_access_token(self, token: str) -> AccessToken | None:
        """One of our OAuth access tokens, still valid and of a live grant (for /revoke)."""
        try:
            principal = await self.verifier.verify(token)
        except InvalidToken:
            return None
        if principal.grant_id is None:
            return None
        grant = await self.database.run(repository.get_live_grant, grant_id=principal.grant_id)
        if grant is None:
            return None
        return AccessToken(
            token=token,
            client_id=grant.client_id,
            scopes=grant.scopes.split(),
            expires_at=principal.expires_at,
            resource=grant.resource,
            subject=grant.user_id,
            claims={GRANT_CLAIM: grant.id},
        )

    async def revoke_token(self, token: AccessToken | GrantRefreshToken) -> None:
        grant_id = (
            token.grant_id
            if isinstance(token, GrantRefreshToken)
            else str((token.claims or {}).get(GRANT_CLAIM, ""))
        )
        if grant_id:
            await self.database.run(repository.revoke_grant, grant_id=grant_id, now=utcnow())

    async def purge_expired(self) -> None:
        await self.database.run(repository.purge_expired, now=datetime.now(UTC))
