"""The provider's authorization part: clients registering themselves, /authorize sending the
browser to the sign-in page with the request signed into the link, and the user's answer (a
grant and its code, or a refusal) sent back to the client."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import jwt
from mcp.server.auth.provider import (
    AuthorizationParams,
    AuthorizeError,
    RegistrationError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from todochat.config import Settings
from todochat.db import Database
from todochat.models import OAuthClient, OAuthCode, OAuthGrant, utcnow
from todochat.oauth import repository
from todochat.oauth.rules import acceptable_redirect_uri, hash_secret
from todochat.oauth.schemas import PendingAuthorization

SIGN_IN_PATH = "/oauth/sign-in"
# The audience of a signed pending request: no other token of ours can stand in for one.
_PENDING_AUDIENCE = "todochat:oauth-authorization-request"
# Long enough to type a password, short enough that an old link is useless.
PENDING_TTL_S = 600
_MAX_CLIENT_ID = 64


class AuthorizationPart:
    """Clients, /authorize and the sign-in page's outcome, for `OAuthProvider`."""

    database: Database
    settings: Settings
    resource_url: Callable[[], str]

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
            code_hash=hash_secret(code),
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
