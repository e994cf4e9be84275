"""The application factory: lifespan (database, auth, agent, MCP), routers, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from todochat import __version__
from todochat.agent.runner import AgentRuntime
from todochat.apidocs.router import docs_router
from todochat.auth.router import router as auth_router
from todochat.auth.tokens import TokenVerifier
from todochat.chat.router import router as chat_router
from todochat.chatkit.router import router as chatkit_router
from todochat.config import Settings, get_settings
from todochat.conversations.router import router as conversations_router
from todochat.db import Database, create_engine
from todochat.errors import AppError
from todochat.health.router import router as health_router
from todochat.idempotency import service as idempotency_service
from todochat.logs import configure_logging
from todochat.mcp.identity import identity_from_meta
from todochat.mcp.router import HttpMCP, mcp_routes
from todochat.mcp.server import create_mcp_server
from todochat.metrics import Metrics
from todochat.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    InternalErrorMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from todochat.oauth.router import current_resource, oauth_routes
from todochat.oauth.service import OAuthProvider
from todochat.playground.router import playground_router
from todochat.ratelimit import RateLimiter
from todochat.schemas import describe, error_response, problems
from todochat.tasks.router import router as tasks_router

log = logging.getLogger("todochat")


def _describe_startup(settings: Settings) -> None:
    where = "SQLite file " + str(settings.sqlite_path()) if settings.is_sqlite else "PostgreSQL"
    secret = (
        "a DEVELOPMENT secret (set BETTER_AUTH_SECRET)"
        if settings.using_dev_secret
        else ("BETTER_AUTH_SECRET")
    )
    log.info(
        f"todochat {__version__} starting ({settings.app_env}) on {where}, signing tokens with "
        f"{secret}, model provider {settings.resolved_model_provider}"
    )


PURGE_INTERVAL_S = 3600


async def _purge_expired(database: Database, ttl_s: float, oauth: OAuthProvider | None) -> None:
    """Every hour, drop Idempotency-Key records older than their TTL, and OAuth codes and
    refresh tokens past their expiry (any instance may)."""
    # Expired OAuth rows are inert (every use checks `expires_at`): their first purge waits an
    # hour, so that start-up does no more database work than before.
    oauth_due = False
    while True:
        try:
            await idempotency_service.purge_expired(database, ttl_s=ttl_s)
            if oauth is not None and oauth_due:
                await oauth.purge_expired()
        except Exception as exc:  # the database may be down; try again next time
            log.warning(
                "expired row purge failed",
                extra={"operation": "idempotency.purge", "error_type": type(exc).__name__},
            )
        oauth_due = True
        await asyncio.sleep(PURGE_INTERVAL_S)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    _describe_startup(settings)
    database = Database(create_engine(settings, metrics=metrics), metrics=metrics)
    metrics.track_pool(database.pool_status)
    app.state.database = database
    token_verifier = app.state.token_verifier = TokenVerifier(settings)
    limiter = app.state.rate_limiter = RateLimiter(settings, metrics=metrics)
    # One tool definition, two server instances: the agent's trusts the `_meta` our own runtime
    # writes; the one outside clients reach at /mcp trusts only their bearer token.
    mcp_server = create_mcp_server(
        database=database,
        identity=identity_from_meta,
        limiter=limiter,
        count_calls=False,
        settings=settings,
    )
    # Stand-alone, this service is the authorization server of /mcp; with an outside issuer,
    # that issuer is, and nothing here pretends to be one.
    oauth_provider = app.state.oauth_provider = (
        OAuthProvider(
            database=database,
            settings=settings,
            verifier=token_verifier,
            resource_url=current_resource.get,
        )
        if settings.external_issuer is None
        else None
    )
    mcp_http = HttpMCP(
        database=database,
        token_verifier=token_verifier,
        settings=settings,
        limiter=limiter,
        grant_is_live=oauth_provider.grant_is_live if oauth_provider is not None else None,
    )
    app.state.mcp_http = mcp_http
    runtime = AgentRuntime(settings=settings, mcp_server=mcp_server, metrics=metrics)
    await runtime.start()
    app.state.agent_runtime = runtime
    purge = asyncio.create_task(
        _purge_expired(database, settings.idempotency_ttl_s, oauth_provider)
    )
    try:
        async with mcp_http.run():
            if settings.gc_freeze:
                _freeze_startup_objects()
            yield
    finally:
        # Uvicorn runs this after in-flight requests finished (or the grace period ran out).
        log.info("shutting down", extra={"operation": "app.shutdown"})
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        await runtime.stop()
        await app.state.rate_limiter.close()
        await database.dispose()
        metrics.track_pool(None)
        log.info("shutdown complete: database pool disposed", extra={"operation": "app.shutdown"})


# Young-generation threshold once the start-up objects are frozen (CPython's default is 700).
# A chat turn allocates tens of thousands of short-lived objects, nearly all freed by reference
# counting; collecting every 700 allocations only re-scans them (P7 in specs/decisions.md).
GC_GEN0_THRESHOLD = 20_000


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, schemas, the SDK's tool definitions, about
    270,000 objects) out of the collector's sight. Otherwise each full collection walks them
    all: 110-150 ms with every request of the worker stopped, every few seconds under load."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


_NOT_JSON = "Request body is not valid JSON"


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        # A rate-limited route that fails later still tells the client its remaining budget.
        budget: dict[str, str] = getattr(request.state, "rate_limit_headers", {})
        return error_response(
            exc.status_code,
            exc.detail,
            {**budget, **(exc.headers or {})} or None,
            conversation_id=exc.conversation_id,
            done=exc.done,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = problems(list(exc.errors()))
        first = errors[0] if errors else None
        if first is None:
            detail = "Invalid request"
        elif first.type == "json_invalid":
            detail = _NOT_JSON
        else:
            detail = describe(first, skip=("body", "query", "path"))
        budget: dict[str, str] = getattr(request.state, "rate_limit_headers", {})
        return error_response(422, detail, budget or None, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # FastAPI answers 400 when a JSON body is not even UTF-8; to a client that is the
            # same mistake as malformed JSON, which is 422 everywhere else.
            return error_response(422, _NOT_JSON)
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names only the first route of the path; the answer must list them all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return error_response(exc.status_code, detail, headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    docs = settings.docs_on
    app = FastAPI(
        title="todochat",
        version=__version__,
        summary="The backend of an AI todo chatbot.",
        description=(
            "The same task tools the chat agent uses are served to MCP clients at `/mcp` "
            "(streamable HTTP, `Authorization: Bearer <token>`; OAuth protected-resource "
            "metadata at `/.well-known/oauth-protected-resource/mcp`). That endpoint speaks "
            "MCP's JSON-RPC, so it is not listed below. Neither is `POST /chatkit`, the "
            "OpenAI ChatKit protocol for ChatKit frontends (same bearer token; see the README)."
        ),
        lifespan=lifespan,
        # /docs is our own route (apidocs/), serving Swagger UI's files from the app.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # Starlette's slash redirect builds its Location from the Host header (an open redirect,
        # and a 307 makes the client send a sign-in body, password included, where it points).
        # A path with a stray slash is a JSON 404 instead (D36 in specs/decisions.md).
        redirect_slashes=False,
    )
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    _install_error_handlers(app)
    for router in (
        health_router,
        auth_router,
        tasks_router,
        chat_router,
        conversations_router,
        chatkit_router,
    ):
        app.include_router(router)
    app.router.routes.extend(mcp_routes())
    if settings.external_issuer is None:
        app.router.routes.extend(oauth_routes())
    if docs:
        app.include_router(docs_router(title=app.title, openapi_url="/openapi.json"))
    if settings.playground_on:
        app.include_router(playground_router())

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "Mcp-Protocol-Version",
                "Mcp-Session-Id",
                "Last-Event-ID",
            ],
            expose_headers=[
                "WWW-Authenticate",
                "Mcp-Session-Id",
                "X-Request-ID",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Idempotent-Replayed",
                "Link",
                "X-Next-Cursor",
            ],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added innermost first: the request's context is the outermost, so every answer (a 500
    # too) carries the request id and the security headers, and is logged.
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware, observe=metrics.observe_request)
    app.add_middleware(RequestContextMiddleware)
    return app
