"""This service as the OAuth 2.1 authorization server of /mcp, in the stand-alone set-up.

The MCP SDK's handlers speak the protocol (metadata, registration, /authorize, /token, /revoke,
PKCE S256, client authentication, the error shapes); `OAuthProvider` is the storage and policy
behind them (`mcp.server.auth.provider.OAuthAuthorizationServerProvider`):

- clients register themselves (RFC 7591); redirect URIs must be HTTPS, or HTTP on a loopback
  address, and are matched exactly;
- /authorize sends the browser to our sign-in page with the request signed into the link, so a
  pending request needs no row and cannot be altered;
- signing in makes a grant and a code (hash stored, single use, `OAUTH_CODE_TTL_S`);
- a code buys an access token (this service's JWT, audience the /mcp URL, with the grant's id)
  and a refresh token; a refresh token buys the next pair once (rotation);
- a code or refresh token presented again revokes its whole grant (RFC 9700 4.14.2), and so does
  revocation of either kind of token; /mcp refuses access tokens of a revoked grant.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.auth.tokens import GRANT_CLAIM, TokenVerifier
from todochat.config import Settings
from todochat.db import Database
from todochat.errors import InvalidToken
from todochat.models import OAuthClient, OAuthCode, OAuthGrant, OAuthRefreshToken, utcnow
from todochat.oauth import repository
from todochat.oauth.schemas import PendingAuthorization

SIGN_IN_PATH = "/oauth/sign-in"
# The audience of a signed pending request: no other token of ours can stand in for one.
_PENDING_AUDIENCE = "todochat:oauth-authorization-request"
# Long enough to type a password, short enough that an old link is useless.
PENDING_TTL_S = 600
_MAX_CLIENT_ID = 64
_MAX_SECRET = 256


class GrantCode(AuthorizationCode):
    grant_id: str


class GrantRefreshToken(RefreshToken):
    grant_id: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def acceptable_redirect_uri(uri: str) -> bool:
    """HTTPS, or HTTP on this machine (OAuth 2.1 and MCP: native clients listen on loopback); no
    fragment (RFC 6749 3.1.2), no credentials in the URL."""
    parts = urlsplit(uri)
    if parts.fragment or parts.username or parts.password or not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))


class OAuthProvider(OAuthAuthorizationServerProvider[GrantCode, GrantRefreshToken, AccessToken]):
    """Storage and policy behind the SDK's handlers (the identity-assertion grant keeps the
    protocol's default: unsupported).

    `resource_url` gives the /mcp URL of the request being handled (it follows PUBLIC_URL, or
    the request's allowed Host): the only resource tokens are issued for."""

    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        verifier: TokenVerifier,
        resource_url: Callable[[], str],
    ) -> None:
        self.database = database
        self.settings = settings
        self.verifier = verifier
        self.resource_url = resource_url

    # --- clients -------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if not client_id or len(client_id) > _MAX_CLIENT_ID:
            return None
        row = await self.database.run(repository.get_client, client_id=client_id)
        return OAuthClientInformationFull.model_validate(row.info) if row is not None else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        uris = [str(u) for u in client_info.redirect_uris or []]
        bad = [u for u in uris if not acceptable_redirect_uri(u)]
        if bad:
            raise RegistrationError(
                "invalid_redirect_uri",
                "redirect_uris must be https URLs, or http URLs on localhost or a loopback "
                "address, without a fragment",
            )
        if set(client_info.grant_types) - {"authorization_code", "refresh_token"}:
            raise RegistrationError(
                "invalid_client_metadata",
                "grant_types may only be authorization_code and refresh_token",
            )
        if client_info.client_id is None:  # the SDK's handler always sets one
            raise RegistrationError("invalid_client_metadata", "no client_id")
        row = OAuthClient(client_id=client_info.client_id, info=client_info.model_dump(mode="json"))
        await self.database.run(repository.add, row)

    # --- authorization ---------------------------------------------------------------------

    def _check_resource(self, resource: str | None) -> str:
        expected = self.resource_url()
        if resource is not None and resource.rstrip("/") != expected:
            raise AuthorizeError("invalid_target", f"this server only grants access to {expected}")
        return expected

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        if not params.redirect_uri_provided_explicitly:
            # OAuth 2.1: the redirect URI is part of every authorization request.
            raise AuthorizeError("invalid_request", "redirect_uri is required")
        resource = self._check_resource(params.resource)
        pending = PendingAuthorization(
            client_id=client.client_id or "",
            redirect_uri=str(params.redirect_uri),
            code_challenge=params.code_challenge,
            state=params.state,
            scopes=params.scopes or [],
            resource=resource,
        )
        return f"{SIGN_IN_PATH}?request={self.sign_pending(pending)}"

    def sign_pending(self, pending: PendingAuthorization) -> str:
        now = int(time.time())
        claims = {
            **pending.model_dump(),
            "aud": _PENDING_AUDIENCE,
            "iat": now,
            "exp": now + PENDING_TTL_S,
        }
        return jwt.encode(claims, self.settings.jwt_secret, algorithm="HS256")

    def read_pending(self, signed: str) -> PendingAuthorization | None:
        """The request behind a sign-in link, or None when it is forged, altered or stale."""
        if len(signed) > self.settings.max_token_bytes:
            return None
        try:
            claims = jwt.decode(
                signed,
                self.settings.jwt_secret,
                algorithms=["HS256"],
                audience=_PENDING_AUDIENCE,
                options={"require": ["exp", "aud"]},
            )
            return PendingAuthorization.model_validate(
                {k: v for k, v in claims.items() if k not in ("aud", "iat", "exp")}
            )
        except (jwt.PyJWTError, ValidationError):
            return None

    async def approve(
        self, *, client: OAuthClientInformationFull, pending: PendingAuthorization, user_id: str
    ) -> str:
        """The user said yes: a grant and its code; returns the URL to send the browser to."""
        code = secrets.token_urlsafe(32)
        grant = OAuthGrant(
            id=uuid.uuid4().hex,
            client_id=pending.client_id,
            user_id=user_id,
            resource=pending.resource,
            scopes=" ".join(pending.scopes),
        )
        row = OAuthCode(
            code_hash=_hash(code),
            grant_id=grant.id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            expires_at=utcnow() + timedelta(seconds=self.settings.oauth_code_ttl_s),
        )

        async def work(session: AsyncSession) -> None:
            # The grant first: the code refers to it.
            await repository.add(session, grant)
            await repository.add(session, row)

        await self.database.run(work)
        return construct_redirect_uri(pending.redirect_uri, code=code, state=pending.state)

    @staticmethod
    def denied(pending: PendingAuthorization) -> str:
        return construct_redirect_uri(
            pending.redirect_uri,
            error="access_denied",
            error_description="The user did not allow access",
            state=pending.state,
        )

    # --- codes -----------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> GrantCode | None:
        if not authorization_code or len(authorization_code) > _MAX_SECRET:
            return None
        code_hash = _hash(authorization_code)

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
        code_hash = _hash(authorization_code.code)

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
        row = OAuthRefreshToken(token_hash=_hash(token), grant_id=grant_id, expires_at=now + ttl)
        await repository.add(session, row)
        return token

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> GrantRefreshToken | None:
        if not refresh_token or len(refresh_token) > _MAX_SECRET:
            return None
        token_hash = _hash(refresh_token)

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
        token_hash = _hash(refresh_token.token)
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
