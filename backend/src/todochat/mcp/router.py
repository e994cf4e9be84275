"""`/mcp`: the task tools over streamable HTTP for outside MCP clients.

Authenticated with the same bearer tokens as the REST API: the token's user is the user of every
tool call, and nothing the client sends (`_meta`, a `user_id` argument) can change that. Without
a valid token the answer is a JSON 401 whose `WWW-Authenticate` points at the OAuth
protected-resource metadata (RFC 9728), which MCP clients read to learn how to authenticate.

The endpoint is stateless (every POST stands alone, any instance can answer it) and answers with
JSON rather than an SSE stream, so it passes unchanged through proxies and our middlewares.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.routes import cors_middleware
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import ValidationError
from starlette.authentication import AuthCredentials
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from todochat.auth.tokens import TokenVerifier
from todochat.config import Settings
from todochat.db import Database
from todochat.errors import InvalidToken, NotAuthenticated
from todochat.logs import bind
from todochat.mcp.auth import BearerTokenVerifier, GrantCheck
from todochat.mcp.identity import identity_from_access_token
from todochat.mcp.server import create_mcp_server
from todochat.ratelimit import RateLimiter
from todochat.schemas import error_response

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"

# The transport's own refusals are plain text; ours speak the API's error shape.
_REFUSALS = {
    400: "Content-Type must be application/json",
    403: "This Origin is not allowed to call /mcp",
    421: "This host name is not allowed for /mcp (the server's MCP_ALLOWED_HOSTS must list it)",
}


_ALLOW = {"Allow": "POST"}


def _with_any_port(host: str) -> list[str]:
    """An entry without a port allows the host on its default port and on any other."""
    has_port = "]:" in host if host.startswith("[") else ":" in host
    return [host] if has_port else [host, f"{host}:*"]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: a browser tricked into calling us under a foreign name sends
    that name as Host (and its page as Origin); only our own names get through."""
    entries = [h.strip() for h in settings.mcp_allowed_hosts if h.strip()]
    if "*" in entries:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if settings.public_url:
        entries.append(settings.public_url.split("://", 1)[1])
    hosts = [pattern for entry in entries for pattern in _with_any_port(entry)]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    origins += [o for o in settings.cors_origins if o != "*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def _allowed(host: str, allowed_hosts: list[str]) -> bool:
    """The SDK's Host rule: an exact entry, or "name:*" for that name on any port."""
    return host in allowed_hosts or any(
        entry.endswith(":*") and host.startswith(entry[:-1]) for entry in allowed_hosts
    )


class HttpMCP:
    """The `/mcp` server of one app instance; built, and its session manager run, in the
    lifespan (a mounted app's own lifespan never runs)."""

    def __init__(
        self,
        *,
        database: Database,
        token_verifier: TokenVerifier,
        settings: Settings,
        limiter: RateLimiter,
        grant_is_live: GrantCheck | None = None,
    ):
        self.settings = settings
        self.verifier = BearerTokenVerifier(token_verifier, grant_is_live=grant_is_live)
        self.security = TransportSecurityMiddleware(transport_security(settings))
        self.server: MCPServer = create_mcp_server(
            database=database,
            identity=identity_from_access_token,
            limiter=limiter,
            count_calls=True,
            settings=settings,
        )
        # Builds the session manager; the Starlette app it returns is not used, because auth,
        # errors and routing are ours (see `handle`).
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=self.security.settings,
            max_request_body_size=settings.max_body_bytes,
        )
        self._transport = AuthContextMiddleware(self.server.session_manager.handle_request)

    def run(self) -> AbstractAsyncContextManager[None]:
        return self.server.session_manager.run()

    def base_url(self, request: Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url
        # Only reached once the Host passed the allow-list (or the check is off by choice).
        return f"{request.url.scheme}://{request.url.netloc}"

    def known_base_url(self, request: Request) -> str | None:
        """The URL clients reach us by, if we know it: PUBLIC_URL, or this request's origin when
        its Host is on the allow-list. Never a Host nobody configured (the check may be off)."""
        if self.settings.public_url:
            return self.settings.public_url
        security = self.security.settings
        host = request.headers.get("host", "")
        if security.enable_dns_rebinding_protection and _allowed(host, security.allowed_hosts):
            return f"{request.url.scheme}://{request.url.netloc}"
        return None

    def resource_metadata(self, request: Request) -> ProtectedResourceMetadata:
        base = self.base_url(request)
        # An outside issuer (Better Auth names itself by URL) is the authorization server;
        # otherwise this service is (todochat.oauth).
        authority = self.settings.external_issuer or base
        return ProtectedResourceMetadata.model_validate(
            {
                "resource": base + MCP_PATH,
                "authorization_servers": [authority],
                "bearer_methods_supported": ["header"],
                "resource_name": "todochat task tools",
                "resource_documentation": base + "/docs" if self.settings.docs_on else None,
            }
        )

    async def refusal(self, request: Request) -> Response | None:
        refused = await self.security.validate_request(request, is_post=request.method == "POST")
        if refused is None:
            return None
        status = refused.status_code
        return error_response(
            status, _REFUSALS.get(status, bytes(refused.body).decode() or "Bad request")
        )

    def _unauthorized(self, request: Request, exc: NotAuthenticated) -> Response:
        # No credentials at all: no error code (RFC 6750 3.1).
        params = (
            ['error="invalid_token"', f'error_description="{exc.detail}"']
            if isinstance(exc, InvalidToken)
            else []
        )
        # This answer goes to anyone, before the Host check: it names our metadata only at a
        # URL we know. Without one, clients fall back to the well-known path of the URL they
        # called (MCP authorization, "Protected Resource Metadata Discovery").
        base = self.known_base_url(request)
        if base is not None:
            params.append(f'resource_metadata="{base}{METADATA_PATH}{MCP_PATH}"')
        challenge = f"Bearer {', '.join(params)}" if params else "Bearer"
        return error_response(401, exc.detail, {"WWW-Authenticate": challenge})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # Authentication first: without a valid token the answer is always 401, whatever else
        # is wrong with the request (a token-less DNS-rebinding request gets nothing either).
        header = request.headers.get("authorization")
        if not header:
            await self._unauthorized(request, NotAuthenticated())(scope, receive, send)
            return
        scheme, _, token = header.partition(" ")
        access = (
            await self.verifier.verify_for(token.strip(), self.base_url(request) + MCP_PATH)
            if scheme.lower() == "bearer"
            else None
        )
        if access is None:
            await self._unauthorized(request, InvalidToken())(scope, receive, send)
            return
        refused = await self.refusal(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        if request.method != "POST":
            # Stateless: no session to DELETE, and never a server-initiated message, so no GET
            # stream either (the spec's answer for that is 405). An idle stream per client would
            # only hold a task and delay shutdown.
            await error_response(
                405, "Send MCP requests with POST; this endpoint has no event stream", _ALLOW
            )(scope, receive, send)
            return
        # What the SDK's AuthenticationMiddleware would store: `get_access_token()` reads it.
        scope["user"] = AuthenticatedUser(access)
        scope["auth"] = AuthCredentials(access.scopes)
        bind(user_id=access.subject)
        await self._transport(scope, receive, send)


def _mcp_of(scope: Scope) -> HttpMCP:
    mcp_http: HttpMCP = scope["app"].state.mcp_http
    return mcp_http


class _Endpoint:
    """An ASGI app rather than a request handler: the MCP transport writes its own responses."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _mcp_of(scope).handle(scope, receive, send)


async def _metadata(request: Request) -> Response:
    mcp_http = _mcp_of(request.scope)
    refused = await mcp_http.refusal(request)
    if refused is not None:
        return refused
    try:
        metadata = mcp_http.resource_metadata(request)
    except ValidationError:  # only reachable with the host check off and a Host that is no URL
        return error_response(400, "Invalid Host header")
    body: dict[str, Any] = metadata.model_dump(mode="json", exclude_none=True)
    return Response(json.dumps(body), media_type="application/json")


class NamedRoute(Route):
    """Names itself in the scope, as FastAPI does for its own routes, for the access log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


def mcp_routes() -> list[BaseRoute]:
    """`/mcp` and its metadata, at the RFC 9728 path for the `/mcp` resource and at the root
    well-known path that older clients try. Protocol endpoints: not part of the OpenAPI schema.
    """
    metadata = cors_middleware(_metadata, ["GET", "OPTIONS"])
    return [
        NamedRoute(MCP_PATH, endpoint=_Endpoint(), name="mcp", include_in_schema=False),
        *(
            NamedRoute(path, endpoint=metadata, methods=["GET", "OPTIONS"], include_in_schema=False)
            for path in (METADATA_PATH + MCP_PATH, METADATA_PATH)
        ),
    ]
