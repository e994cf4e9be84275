"""Our bearer tokens, as the MCP SDK sees them.

`/mcp` accepts exactly the tokens the REST API accepts: the adapter delegates to the app's
`TokenVerifier` (same secret, JWKS, algorithms, issuer and audience checks) and hands the SDK an
`AccessToken` whose `subject` is the user every tool call acts for.
"""

from __future__ import annotations

from mcp.server.auth.provider import AccessToken

from todochat.auth.tokens import TokenVerifier
from todochat.errors import InvalidToken


class BearerTokenVerifier:
    """`mcp.server.auth.provider.TokenVerifier` over our `TokenVerifier`."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await self._verifier.verify(token)
        except InvalidToken:
            return None
        # Our tokens name a user, not an OAuth client; the user doubles as the client so that
        # the SDK's per-principal bookkeeping stays per user.
        return AccessToken(
            token=token,
            client_id=principal.id,
            subject=principal.id,
            scopes=[],
            expires_at=principal.expires_at,
        )
