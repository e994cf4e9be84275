"""Who is calling: the bearer token, checked against the `{user_id}` of the path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from todochat.auth.tokens import Principal, TokenVerifier
from todochat.errors import Forbidden, InvalidToken, NotAuthenticated
from todochat.logs import bind

_bearer = HTTPBearer(auto_error=False, description="A JWT from sign-in or from Better Auth.")


async def get_token_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(get_token_verifier)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated()
    principal = await verifier.verify(credentials.credentials)
    if principal.grant_id is not None:
        # An OAuth access token is for /mcp, its audience, and can be revoked there; here it
        # is a token for another audience.
        raise InvalidToken()
    request.state.user_id = principal.id
    bind(user_id=principal.id)
    return principal


async def current_user(
    principal: Annotated[Principal, Depends(authenticated)],
    user_id: Annotated[str, Path(min_length=1, max_length=255, description="The user's id.")],
) -> Principal:
    if principal.id != user_id:
        raise Forbidden()
    return principal


Authenticated = Annotated[Principal, Depends(authenticated)]
"""The token's user, for routes without a `{user_id}` in the path (POST /chatkit)."""
CurrentUser = Annotated[Principal, Depends(current_user)]
