from __future__ import annotations

from mcp.server.auth.provider import AuthorizationCode, RefreshToken
from pydantic import BaseModel, ConfigDict


class PendingAuthorization(BaseModel):
    """An /authorize request the user has not answered yet, carried signed in the sign-in link."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str | None
    scopes: list[str]
    resource: str


class GrantCode(AuthorizationCode):
    grant_id: str


class GrantRefreshToken(RefreshToken):
    grant_id: str
