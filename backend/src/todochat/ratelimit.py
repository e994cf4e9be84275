"""Rate limits with the `limits` library: per user on chat turns, task writes and MCP tool
calls, per client address on sign-in and sign-up. In memory by default; in Redis when REDIS_URL
is set so that every instance shares one budget. If Redis goes away the instance keeps serving
on its own in-memory limits and says so once in the log; it tries Redis again every
RATE_LIMIT_REDIS_RETRY_S, so a dead Redis costs one failed connection attempt per interval, not
one per request.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from todochat.auth.dependencies import Authenticated, CurrentUser
from todochat.config import Settings
from todochat.errors import AppError
from todochat.metrics import Metrics

log = logging.getLogger("todochat.ratelimit")


class RateLimited(AppError):
    status_code = 429
    detail = "Too many requests. Please slow down and try again shortly."


@dataclass(frozen=True)
class Verdict:
    """One hit on a budget: allowed or not, and what is left of it."""

    allowed: bool
    limit: int
    remaining: int
    reset_in_s: int

    @property
    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_in_s),
        }


class RateLimiter:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        self.metrics = metrics
        self.items = {
            "chat": parse(settings.rate_limit_chat),
            "task_write": parse(settings.rate_limit_task_writes),
            "auth": parse(settings.rate_limit_auth),
            "mcp": parse(settings.rate_limit_mcp),
        }
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._storage: RedisStorage | None = None
        self._shared: SlidingWindowCounterRateLimiter | None = None
        self._retry_s = settings.rate_limit_redis_retry_s
        if settings.redis_url:
            uri = settings.redis_url
            for scheme in ("redis://", "rediss://"):
                if uri.startswith(scheme):
                    uri = "async+" + uri
            # coredis is the client the `limits[async-redis]` extra installs; short timeouts
            # so that a hung Redis delays a request by at most half a second.
            self._storage = RedisStorage(
                uri,
                implementation="coredis",
                wrap_exceptions=True,
                key_prefix=settings.rate_limit_key_prefix,
                stream_timeout=0.5,
                connect_timeout=0.5,
            )
            self._shared = SlidingWindowCounterRateLimiter(self._storage)
        self._redis_down_since: float | None = None
        self._redis_retry_at = 0.0

    @property
    def backend(self) -> str:
        return "redis" if self._shared is not None and self._redis_down_since is None else "memory"

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._redis_retry_at = now + self._retry_s
        if self._redis_down_since is None:
            self._redis_down_since = now
            if self.metrics is not None:
                self.metrics.rate_limit_fallback.set(1)
            log.warning(
                "Redis unavailable for rate limits; using per-instance limits",
                extra={"operation": "ratelimit.redis", "error_type": type(exc).__name__},
            )

    async def _strategy_hit(self, item: RateLimitItem, key: str) -> tuple[bool, Any]:
        if self._shared is not None and time.monotonic() >= self._redis_retry_at:
            try:
                allowed = await self._shared.hit(item, key)
                stats = await self._shared.get_window_stats(item, key)
            except Exception as exc:  # any storage failure: never fail the request for it
                self._redis_failed(exc)
            else:
                if self._redis_down_since is not None:
                    log.warning(
                        "Redis is back; rate limits are shared again",
                        extra={"operation": "ratelimit.redis"},
                    )
                    self._redis_down_since = None
                    if self.metrics is not None:
                        self.metrics.rate_limit_fallback.set(0)
                return allowed, stats
        allowed = await self._memory.hit(item, key)
        return allowed, await self._memory.get_window_stats(item, key)

    async def close(self) -> None:
        """Close the Redis connections (keys expire on their own)."""
        self._shared = None
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.disconnect()

    async def hit(self, *, scope: str, key: str) -> Verdict:
        """Spend one unit of `key`'s budget in `scope`, if there is one left."""
        item = self.items[scope]
        if not self.enabled:
            return Verdict(allowed=True, limit=item.amount, remaining=item.amount, reset_in_s=0)
        allowed, stats = await self._strategy_hit(item, f"{scope}:{key}")
        if not allowed and self.metrics is not None:
            self.metrics.rate_limited.labels(scope).inc()
        return Verdict(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_in_s=max(0, int(stats.reset_time - time.time()) + 1),
        )

    async def check(self, *, scope: str, key: str, request: Request, response: Response) -> None:
        """Spend one unit for this request; 429 (`RateLimited`) when the budget is used up."""
        if not self.enabled:
            return
        verdict = await self.hit(scope=scope, key=key)
        if not verdict.allowed:
            raise RateLimited(headers={**verdict.headers, "Retry-After": str(verdict.reset_in_s)})
        response.headers.update(verdict.headers)
        request.state.rate_limit_headers = verdict.headers


@dataclass
class Budget:
    """A request's claim on one of its user's budgets, spent when the request is admitted
    rather than when it arrives: a request refused for its content (422, 404) or answered from
    its Idempotency-Key record costs nothing. `spend` spends at most once per request."""

    limiter: RateLimiter
    scope: str
    key: str
    request: Request
    response: Response
    spent: bool = field(default=False, init=False)

    async def spend(self) -> None:
        if self.spent:
            return
        await self.limiter.check(
            scope=self.scope, key=self.key, request=self.request, response=self.response
        )
        self.spent = True


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _limit_auth(request: Request, response: Response) -> None:
    await _limiter(request).check(
        scope="auth", key=client_address(request), request=request, response=response
    )


# Per-user limits run after authentication, so anonymous noise never spends a user's budget.
async def _chat_budget(request: Request, response: Response, user: CurrentUser) -> Budget:
    return Budget(
        limiter=_limiter(request), scope="chat", key=user.id, request=request, response=response
    )


async def _bearer_chat_budget(request: Request, response: Response, user: Authenticated) -> Budget:
    return Budget(
        limiter=_limiter(request), scope="chat", key=user.id, request=request, response=response
    )


async def _limit_task_write(request: Request, response: Response, user: CurrentUser) -> None:
    await _limiter(request).check(
        scope="task_write", key=user.id, request=request, response=response
    )


AuthRateLimit = Depends(_limit_auth)
ChatRateLimit = Depends(_chat_budget)
ChatBudget = Annotated[Budget, ChatRateLimit]
# The same chat budget, of the token's user, on a route without `{user_id}` (POST /chatkit).
BearerChatBudget = Annotated[Budget, Depends(_bearer_chat_budget)]
TaskWriteRateLimit = Depends(_limit_task_write)
