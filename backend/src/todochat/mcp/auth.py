"""Our bearer tokens, as the MCP SDK sees them.

`/mcp` accepts the tokens the REST API accepts: the adapter delegates to the app's
`TokenVerifier` (same secret, JWKS, algorithms, issuer and audience checks) and hands the SDK an
`AccessToken` whose `subject` is the user every tool call acts for. On top of that, a token that
names an audience must name this /mcp URL (RFC 8707, MCP authorization "Token Audience
Binding"), and an OAuth access token of this service must belong to a grant not revoked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.server.auth.provider import AccessToken

from todochat.auth.tokens import TokenVerifier
from todochat.errors import InvalidToken

GrantCheck = Callable[[str], Awaitable[bool]]


class BearerTokenVerifier:
    """`mcp.server.auth.provider.TokenVerifier` over our `TokenVerifier`."""

    def __init__(self, verifier: TokenVerifier, *, grant_is_live: GrantCheck | None = None) -> None:
        self._verifier = verifier
        self._grant_is_live = grant_is_live

    async def verify_for(self, token: str, resource: str) -> AccessToken | None:
        """The token's access to `resource` (this /mcp URL), or None."""
        try:
            principal = await self._verifier.verify(token)
        except InvalidToken:
            return None
        if principal.grant_id is not None:
            # An OAuth access token of ours: for this resource, of a grant still in force.
            if resource not in principal.audiences:
                return None
            if self._grant_is_live is None or not await self._grant_is_live(principal.grant_id):
                return None
        # JWT_AUDIENCE, when set, was checked by the verifier (an outside issuer's own audience);
        # otherwise a token that names an audience must name this resource.
        elif (
            self._verifier.settings.jwt_audience is None
            and principal.audiences
            and resource not in principal.audiences
        ):
            return None
        # Our sign-in tokens name a user, not an OAuth client; the user doubles as the client
        # so that the SDK's per-principal bookkeeping stays per user.
        return AccessToken(
            token=token,
            client_id=principal.id,
            subject=principal.id,
            scopes=[],
            expires_at=principal.expires_at,
            resource=resource,
        )
