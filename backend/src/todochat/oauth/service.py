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

`OAuthProvider` is composed of two parts: authorization.py (clients, /authorize, the sign-in
page's outcome) and tokens.py (codes, refresh tokens, access tokens, revocation); rules.py holds
the redirect-URI rule and the hashing of stored secrets.
"""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.auth.provider import AccessToken, OAuthAuthorizationServerProvider

from todochat.auth.tokens import TokenVerifier
from todochat.config import Settings
from todochat.db import Database
from todochat.oauth.authorization import AuthorizationPart
from todochat.oauth.schemas import GrantCode, GrantRefreshToken
from todochat.oauth.tokens import TokenPart


class OAuthProvider(
    AuthorizationPart,
    TokenPart,
    OAuthAuthorizationServerProvider[GrantCode, GrantRefreshToken, AccessToken],
):
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
