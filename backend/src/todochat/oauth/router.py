"""The authorization server's endpoints (stand-alone set-up): the MCP SDK's handlers for the
protocol, our sign-in page for the user. Not mounted when an outside issuer signs users in.

The metadata is built per request, like the protected-resource metadata: its URLs follow
PUBLIC_URL or the request's allowed Host, so `make run` on any port and a deployment behind a
proxy both describe themselves correctly.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.routes import build_metadata, cors_middleware
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl, AnyUrl, ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.types import Message

from todochat.auth import service as auth_service
from todochat.auth.schemas import SignIn
from todochat.errors import InvalidCredentials
from todochat.mcp.router import MCP_PATH, HttpMCP, NamedRoute
from todochat.oauth.authorization import SIGN_IN_PATH
from todochat.oauth.page import STYLESHEET, STYLESHEET_PATH, broken_link_page, sign_in_page
from todochat.oauth.service import OAuthProvider
from todochat.ratelimit import client_address
from todochat.schemas import error_response

METADATA_PATH = "/.well-known/oauth-authorization-server"
_REGISTRATION = ClientRegistrationOptions(enabled=True)
_REVOCATION = RevocationOptions(enabled=True)
_NO_STORE = {"Cache-Control": "no-store"}

# The /mcp URL of the request being handled, for the provider (see OAuthProvider.resource_url).
current_resource: ContextVar[str] = ContextVar("current_resource")

Handler = Callable[[Request], Awaitable[Response]]


def _provider(request: Request) -> OAuthProvider:
    provider: OAuthProvider = request.app.state.oauth_provider
    return provider


def _base(request: Request) -> str | None:
    """Our own URL: PUBLIC_URL, or this request's origin when its Host is allowed."""
    mcp_http: HttpMCP = request.app.state.mcp_http
    if not mcp_http.security.settings.enable_dns_rebinding_protection:
        return mcp_http.base_url(request)
    return mcp_http.known_base_url(request)


def _ours(handler_of: Callable[[OAuthProvider], Handler]) -> Handler:
    """Runs an SDK handler with the request's resource URL known to the provider."""

    async def endpoint(request: Request) -> Response:
        base = _base(request)
        if base is None:
            return error_response(
                421, "This host name is not allowed (the server's MCP_ALLOWED_HOSTS must list it)"
            )
        token = current_resource.set(base + MCP_PATH)
        try:
            return await handler_of(_provider(request))(request)
        finally:
            current_resource.reset(token)

    return endpoint


def _limited(handler: Handler) -> Handler:
    """Registration and sign-in spend the sign-in budget of the client's address
    (RATE_LIMIT_AUTH): both are open to anyone."""

    async def endpoint(request: Request) -> Response:
        verdict = await request.app.state.rate_limiter.hit(
            scope="auth", key=client_address(request)
        )
        if not verdict.allowed:
            return error_response(
                429,
                f"Too many attempts; try again in {verdict.reset_in_s} seconds",
                verdict.headers,
            )
        return await handler(request)

    return endpoint


async def _metadata(request: Request) -> Response:
    base = _base(request)
    if base is None:
        return error_response(421, "This host name is not allowed")
    try:
        issuer = AnyHttpUrl(base)
        docs = AnyHttpUrl(base + "/docs") if request.app.state.settings.docs_on else None
    except ValidationError:  # only with the host check off and a Host that is no URL
        return error_response(400, "Invalid Host header")
    metadata = build_metadata(issuer, docs, _REGISTRATION, _REVOCATION)
    # Public clients (token_endpoint_auth_method "none") are served too: PKCE protects them.
    metadata.token_endpoint_auth_methods_supported = [
        "client_secret_post",
        "client_secret_basic",
        "none",
    ]
    body: dict[str, Any] = metadata.model_dump(mode="json", exclude_none=True)
    # RFC 8414 3.3: the issuer is compared as a string with the URL the client derived it from,
    # which has no trailing slash ("http://host:port"); the URL type would add one.
    body["issuer"] = base
    return Response(json.dumps(body), media_type="application/json")


def _authorize(provider: OAuthProvider) -> Handler:
    return AuthorizationHandler(provider).handle


def _token(provider: OAuthProvider) -> Handler:
    return TokenHandler(provider, ClientAuthenticator(provider)).handle


def _register(provider: OAuthProvider) -> Handler:
    return RegistrationHandler(provider, options=_REGISTRATION).handle


def _revoke(provider: OAuthProvider) -> Handler:
    handle = RevocationHandler(provider, ClientAuthenticator(provider)).handle

    async def revoke(request: Request) -> Response:
        # The SDK's revocation request requires a `client_secret` field, which a public client
        # (RFC 7009 2.1: client_id only) does not send; an empty one means "none" to it.
        form = parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
        if any(name == "client_secret" for name, _ in form):
            return await handle(request)
        body = urlencode([*form, ("client_secret", "")]).encode()

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        return await handle(Request(request.scope, receive))

    return revoke


# Where a browser's sign-in may come from: this page, or the user's own typing ("none").
_OWN_PAGE = frozenset({"same-origin", "none"})


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _sign_in_form(request: Request) -> Response:
    provider = _provider(request)
    pending = provider.read_pending(request.query_params.get("request", ""))
    client = await provider.get_client(pending.client_id) if pending else None
    if pending is None or client is None:
        return broken_link_page()
    return sign_in_page(
        client_name=client.client_name or pending.client_id,
        redirect_uri=pending.redirect_uri,
        signed_request=request.query_params["request"],
    )


async def _sign_in(request: Request) -> Response:
    provider = _provider(request)
    form = await request.form()
    signed = _field(form, "request")
    pending = provider.read_pending(signed)
    client = await provider.get_client(pending.client_id) if pending else None
    # The redirect URI was checked at /authorize; checked again, as the client may have gone.
    if (
        pending is None
        or client is None
        or AnyUrl(pending.redirect_uri) not in (client.redirect_uris or [])
    ):
        return broken_link_page()
    decision = _field(form, "decision")
    if request.headers.get("sec-fetch-site", "same-origin") not in _OWN_PAGE:
        # Sent by another site's page (login CSRF: the victim signed in to the attacker's
        # account, or a grant approved behind the user's back): browsers say so in Fetch
        # Metadata; clients that send none (not browsers) are not refused.
        return sign_in_page(
            client_name=client.client_name or pending.client_id,
            redirect_uri=pending.redirect_uri,
            signed_request=signed,
            problem="Sign in from this page.",
            status=403,
        )
    if decision == "deny":
        return RedirectResponse(provider.denied(pending), status_code=303, headers=_NO_STORE)
    email = _field(form, "email")

    def again(problem: str, status: int) -> Response:
        return sign_in_page(
            client_name=client.client_name or pending.client_id,
            redirect_uri=pending.redirect_uri,
            signed_request=signed,
            email=email[:320],
            problem=problem,
            status=status,
        )

    if decision != "allow":
        return again("Choose whether to allow access.", 400)
    verdict = await request.app.state.rate_limiter.hit(scope="auth", key=client_address(request))
    if not verdict.allowed:
        return again(f"Too many attempts; try again in {verdict.reset_in_s} seconds.", 429)
    try:
        credentials = SignIn(email=email, password=_field(form, "password"))
        signed_in = await auth_service.sign_in(
            db=request.app.state.database, settings=request.app.state.settings, data=credentials
        )
    except (ValidationError, InvalidCredentials):
        return again("Wrong email or password.", 401)
    target = await provider.approve(client=client, pending=pending, user_id=signed_in.user.id)
    return RedirectResponse(target, status_code=303, headers=_NO_STORE)


async def _stylesheet(_request: Request) -> Response:
    return Response(STYLESHEET, media_type="text/css; charset=utf-8")


def oauth_routes() -> list[BaseRoute]:
    """Protocol endpoints and a page: none of them is part of the OpenAPI schema. The token,
    registration, revocation and metadata endpoints answer browsers of any origin (CORS), as
    the SDK's own routes do: browser-based MCP clients such as the Inspector call them."""

    def cors(handler: Handler, *methods: str) -> Any:
        return cors_middleware(handler, [*methods, "OPTIONS"])

    return [
        NamedRoute(METADATA_PATH, cors(_metadata, "GET"), methods=["GET", "OPTIONS"]),
        NamedRoute("/authorize", _ours(_authorize), methods=["GET", "POST"]),
        NamedRoute("/token", cors(_ours(_token), "POST"), methods=["POST", "OPTIONS"]),
        NamedRoute(
            "/register", cors(_limited(_ours(_register)), "POST"), methods=["POST", "OPTIONS"]
        ),
        NamedRoute("/revoke", cors(_ours(_revoke), "POST"), methods=["POST", "OPTIONS"]),
        NamedRoute(SIGN_IN_PATH, _sign_in_form, methods=["GET"]),
        NamedRoute(SIGN_IN_PATH, _sign_in, methods=["POST"]),
        NamedRoute(STYLESHEET_PATH, _stylesheet, methods=["GET"]),
    ]
