"""`todochat mcp`: the task tools over stdio, for desktop MCP clients.

One process serves one user: the one named by the token in `TODOCHAT_TOKEN`, verified exactly as
a bearer token on the REST API is (secret or JWKS, algorithms, expiry, issuer, audience). stdout
carries nothing but the protocol; logs go to stderr, where MCP clients collect them.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from todochat.auth.tokens import Principal, TokenVerifier
from todochat.config import Settings
from todochat.db import Database, create_engine
from todochat.errors import InvalidToken
from todochat.mcp.identity import Identity
from todochat.mcp.server import create_mcp_server
from todochat.migrate import migrate
from todochat.ratelimit import RateLimiter

log = logging.getLogger("todochat.mcp")

TOKEN_ENV = "TODOCHAT_TOKEN"


class StartupError(Exception):
    """The server cannot start; the message, for the person configuring the client, says why."""


def token_identity(principal: Principal) -> Identity:
    """The token's user, for as long as the token is valid: a process can outlive its token."""

    def identity(_ctx: Context) -> str:
        if principal.expires_at is not None and time.time() > principal.expires_at:
            raise ToolError(
                f"{TOKEN_ENV} has expired: sign in again, put the new token in the client's "
                "configuration and restart this server"
            )
        return principal.id

    return identity


async def verify_token(settings: Settings, token: str) -> Principal:
    verifier = TokenVerifier(settings)
    try:
        principal = await verifier.verify(token)
        if principal.grant_id is not None:
            raise InvalidToken()  # an OAuth access token is for /mcp over HTTP only
        return principal
    except InvalidToken:
        raise StartupError(
            f"{TOKEN_ENV} is not a valid token for this server: it has expired, is malformed, "
            "or was signed with another BETTER_AUTH_SECRET. Sign in again "
            "(POST /api/auth/signin) and use the access_token of the answer."
        ) from None


async def serve(settings: Settings, token: str) -> None:
    """Verify the token, apply migrations, then serve on stdin/stdout until the client leaves."""
    principal = await verify_token(settings, token)
    try:
        # Alembic's env runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(migrate, settings.database_url)
    except Exception as exc:
        # The type only: a driver's message can quote the URL, password included.
        raise StartupError(
            f"cannot open or migrate the database named by DATABASE_URL ({type(exc).__name__})"
        ) from None
    database = Database(create_engine(settings))
    # In memory, or shared with the web instances when REDIS_URL is set: one user's budgets.
    limiter = RateLimiter(settings)
    try:
        server = create_mcp_server(
            database=database,
            identity=token_identity(principal),
            limiter=limiter,
            count_calls=True,
            settings=settings,
        )
        log.info("serving the task tools on stdio", extra={"user_id": principal.id})
        await server.run_stdio_async()
    finally:
        await limiter.close()
        await database.dispose()
