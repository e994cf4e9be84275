"""One Settings object, read from the environment and an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Used only in development when no secret is configured; production refuses it by name.
DEV_SECRET = "development-only-secret-do-not-use-in-production-000"
_PLACEHOLDERS = {"changeme", "change-me", "secret", "your-secret-here", "replace-me", DEV_SECRET}
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///data/todochat.db"


class ConfigError(RuntimeError):
    """The configuration cannot run; the message names the setting."""


class Settings(BaseSettings):
    # `.env` in the working directory, else the repository root's (make run works in backend/).
    # Empty values count as unset: `JWT_ISSUER=` must not mean "issuer is the empty string".
    model_config = SettingsConfigDict(
        env_file=("../.env", ".env"), extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    app_env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # None means "by environment": on in development, off in production unless asked for.
    docs_enabled: bool | None = None
    # The same for /playground, the page to try the chat in a browser.
    playground_enabled: bool | None = None
    metrics_enabled: bool = True
    max_body_bytes: int = 1_048_576
    # The HTTP edge (edge.py, E1 in specs/decisions.md): a request head (request line and
    # headers) of at most this many bytes and fields, else 431; read within the header time-out
    # of its first byte, its body within the body time-out of the head's end, else 408.
    # A token of MAX_TOKEN_BYTES must fit in the head.
    http_max_header_bytes: int = Field(default=32_768, ge=1024)
    http_max_headers: int = Field(default=100, ge=10)
    http_header_timeout_s: float = Field(default=10, gt=0)
    http_body_timeout_s: float = Field(default=30, gt=0)
    http_keepalive_timeout_s: int = Field(default=5, ge=1)
    shutdown_timeout_s: int = Field(default=30, ge=1)
    # Where clients reach this service (https://todo.example.com). Named in the MCP OAuth metadata;
    # unset, it is taken from each request's Host.
    public_url: str | None = None
    # Host headers /mcp answers (DNS-rebinding protection): "name" allows any port, "name:port" one
    # port, "*" turns the check off. PUBLIC_URL's host is always allowed.
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"]
    )

    database_url: str = DEFAULT_SQLITE_URL
    # At most 30 connections per process, as with 10 + 20, but all kept once opened: overflow
    # connections are closed on return, and under 50 concurrent turns a worker reopened 20-25
    # of them a second (P1 in specs/decisions.md, docs/PERFORMANCE.md).
    db_pool_size: int = Field(default=30, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_s: float = Field(default=30, gt=0)
    db_pool_recycle_s: int = 3600
    # On (issue 2 requires it): a dropped connection is replaced before it is used. With asyncpg
    # the ping is three round trips (BEGIN, ping, ROLLBACK) per checkout; switching it off saves
    # them, and `Database.run` still retries a unit whose connection turns out dead (P2 in
    # specs/decisions.md).
    db_pool_pre_ping: bool = True
    db_slow_ms: float = 100
    db_connect_timeout_s: float = Field(default=5, gt=0)
    # `todochat serve` and `migrate` wait this long for a database that refuses connections
    # (still starting, out of connection slots) before they give up with exit status 1.
    db_startup_wait_s: float = Field(default=30, ge=0)
    # Off behind a pooler in transaction mode (PgBouncer 1.18's `pool_mode = transaction`, most
    # managed poolers): consecutive transactions of one client connection run on different
    # server connections, so named prepared statements collide or go missing. Off, every
    # statement is parsed unnamed in the same round trip that runs it (S1 in specs/decisions.md).
    db_prepared_statements: bool = True

    better_auth_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    access_token_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    # A token valid for longer than this (exp - iat, or exp - now without iat) is refused, even
    # when correctly signed: a leaked long-lived token would otherwise never stop working.
    max_token_lifetime_s: int = Field(default=30 * 24 * 3600, gt=0)
    max_token_bytes: int = 8192
    # After refetching the JWKS for an unknown `kid`, no new refetch for this long: random kids
    # must not turn every request into a fetch.
    jwt_jwks_cooldown_s: float = Field(default=30, ge=0)
    # The OAuth authorization server for /mcp (stand-alone set-up only, issue 18): how long its
    # access tokens, refresh tokens and authorization codes live.
    oauth_access_token_ttl_s: int = Field(default=3600, gt=0)
    oauth_refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    oauth_code_ttl_s: int = Field(default=300, ge=10, le=600)

    model_provider: Literal["offline", "openai"] | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = Field(default=30, gt=0)
    openai_api: Literal["chat_completions", "responses"] = "chat_completions"
    openai_tracing: bool = False
    # Where model servers differ (README, "Model servers"; M2 in specs/decisions.md). The
    # request's `tool_choice`: "auto" is sent, as some servers (llama-cpp-python) read a missing
    # one as "none" and never call a tool; "unset" leaves it out for servers that refuse it.
    openai_tool_choice: Literal["auto", "required", "unset"] = "auto"
    # Every message content a plain string (assistant `""` beside tool calls, tool outputs as
    # text), for servers that reject `null` and lists of parts (llama.cpp, sglang).
    openai_string_content: bool = False
    agent_max_turns: int = Field(default=10, ge=1)
    # The Runner's per-step gathers without a task for what finishes at once (P14,
    # agent/eager_gather.py); off runs the SDK exactly as installed.
    agent_eager_gather: bool = True
    # Two pure functions of the Agents SDK replaced by faster ones giving the same results
    # (P18, agent/sdk_fastpaths.py); off runs them as installed.
    agent_sdk_fastpaths: bool = True
    # Tool calls one chat turn may run, across its steps and within one step (issue 11).
    agent_max_tool_calls: int = Field(default=20, ge=1)
    chat_turn_timeout_s: float = Field(default=90, gt=0)
    chat_history_limit: int = Field(default=50, ge=1)
    # A streamed turn sends a comment line after this long without anything else to send, so
    # proxies and clients do not take a thinking model for a dead connection.
    chat_stream_heartbeat_s: float = Field(default=15, gt=0)
    # At most this many chat turns of a worker run their own work at once, in the order they
    # came; a turn waiting for the model holds none (lanes.py, P19). 0: no limit.
    chat_lanes: int = Field(default=2, ge=0)
    # Freeze the objects alive after start-up and collect young objects less often (main.py).
    # Off for in-process apps that come and go, such as the tests' (frozen objects are never
    # collected).
    gc_freeze: bool = True

    redis_url: str | None = None
    rate_limit_chat: str = "10/minute"
    rate_limit_task_writes: str = "120/minute"
    rate_limit_auth: str = "10/minute"
    # Every tool call of an outside MCP client (/mcp, `todochat mcp`); its writes also spend
    # RATE_LIMIT_TASK_WRITES, as the chat agent's do.
    rate_limit_mcp: str = "60/minute"
    rate_limit_enabled: bool = True
    rate_limit_key_prefix: str = "todochat"
    rate_limit_redis_retry_s: float = Field(default=5, ge=0)

    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)
    idempotency_wait_s: float = Field(default=10, ge=0)
    # A chat turn holds its conversation (and its Idempotency-Key) for this long, renewed by its
    # instance every quarter of it while the turn runs: a turn whose instance died is free to
    # be taken over at most this long after (S2, S3 in specs/decisions.md).
    chat_turn_lease_s: float = Field(default=8, ge=1)

    @field_validator("cors_origins", "mcp_allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _origin_only(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = urlsplit(value.strip())
        if url.scheme not in ("http", "https") or not url.netloc or url.path.strip("/"):
            raise ValueError("PUBLIC_URL must look like https://todo.example.com (no path)")
        return f"{url.scheme}://{url.netloc}"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Hosting providers hand out postgres:// URLs; SQLAlchemy needs the asyncpg dialect.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value[len("sqlite://") :]
        return value

    @model_validator(mode="after")
    def _check_token_lifetime(self) -> Settings:
        if self.access_token_ttl_s > self.max_token_lifetime_s:
            raise ConfigError(
                "ACCESS_TOKEN_TTL_S must not exceed MAX_TOKEN_LIFETIME_S: "
                "the service would refuse its own tokens"
            )
        return self

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        secret = self.better_auth_secret.get_secret_value() if self.better_auth_secret else ""
        if self.app_env == "production":
            if not secret:
                raise ConfigError("BETTER_AUTH_SECRET is required when APP_ENV=production")
            if len(secret) < 32:
                raise ConfigError("BETTER_AUTH_SECRET must be at least 32 characters long")
            if secret.lower() in _PLACEHOLDERS or "change" in secret.lower():
                raise ConfigError("BETTER_AUTH_SECRET is a placeholder; set a real random secret")
        return self

    @property
    def docs_on(self) -> bool:
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.app_env != "production"

    @property
    def playground_on(self) -> bool:
        if self.playground_enabled is not None:
            return self.playground_enabled
        return self.app_env != "production"

    @property
    def external_issuer(self) -> str | None:
        """The outside authorization server (Better Auth names itself by URL in JWT_ISSUER), or
        None when this service signs users in itself and is the authorization server of /mcp."""
        issuer = self.jwt_issuer
        return issuer if issuer and issuer.startswith(("http://", "https://")) else None

    @property
    def jwt_secret(self) -> str:
        if self.better_auth_secret:
            return self.better_auth_secret.get_secret_value()
        return DEV_SECRET

    @property
    def using_dev_secret(self) -> bool:
        return self.better_auth_secret is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def resolved_model_provider(self) -> Literal["offline", "openai"]:
        if self.model_provider:
            return self.model_provider
        return "openai" if self.openai_api_key else "offline"

    @property
    def model_name(self) -> str:
        return self.openai_model if self.resolved_model_provider == "openai" else "offline-rules-1"

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)


@lru_cache
def get_settings() -> Settings:
    return Settings()


# Every dependency of this service is `async def`: FastAPI runs a plain `def` dependency in a
# worker thread, a hop per request.
async def settings_from_request(request: Request) -> Settings:
    app_settings: Settings = request.app.state.settings
    return app_settings


SettingsDep = Annotated[Settings, Depends(settings_from_request)]
