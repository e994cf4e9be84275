"""Rate limits with the `limits` library: per user on chat and task writes, per client address
on sign-in and sign-up. In memory by default; in Redis when REDIS_URL is set so that every
instance shares one budget. If Redis goes away the instance keeps serving on its own in-memory
limits and says so once in the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from todochat.auth.dependencies import CurrentUser
from todochat.config import Settings
from todochat.errors import AppError

log = logging.getLogger("todochat.ratelimit")
_REDIS_RETRY_S = 5.0


class RateLimited(AppError):
    status_code = 429
    detail = "Too many requests. Please slow down and try again shortly."


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.items = {
            "chat": parse(settings.rate_limit_chat),
            "task_write": parse(settings.rate_limit_task_writes),
            "auth": parse(settings.rate_limit_auth),
        }
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        if settings.redis_url:
            uri = settings.redis_url.replace("redis://", "async+redis://", 1)
            # coredis is the client `limits[async-redis]` installs; short timeouts so that a
            # dead Redis costs a request half a second at most before we fall back.
            storage = RedisStorage(
                uri, wrap_exceptions=True, stream_timeout=0.5, connect_timeout=0.5
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)
        self._redis_down_since: float | None = None

    @property
    def backend(self) -> str:
        return "redis" if self._shared is not None and self._redis_down_since is None else "memory"

    async def _strategy_hit(self, item: RateLimitItem, key: str) -> tuple[bool, Any]:
        down = self._redis_down_since
        # While Redis is down, try it again only every few seconds, not on every request.
        if self._shared is not None and (down is None or time.monotonic() - down >= _REDIS_RETRY_S):
            try:
                allowed = await self._shared.hit(item, key)
                stats = await self._shared.get_window_stats(item, key)
                if self._redis_down_since is not None:
                    log.warning("rate-limit store is back: Redis")
                    self._redis_down_since = None
                return allowed, stats
            except Exception as exc:  # any storage failure: never fail the request for it
                if self._redis_down_since is None:
                    log.warning(
                        "Redis unavailable for rate limits; using per-instance limits",
                        extra={"error_type": type(exc).__name__},
                    )
                self._redis_down_since = time.monotonic()
        allowed = await self._memory.hit(item, key)
        return allowed, await self._memory.get_window_stats(item, key)

    async def check(self, *, scope: str, key: str, response: Response) -> None:
        if not self.enabled:
            return
        item = self.items[scope]
        allowed, stats = await self._strategy_hit(item, f"{scope}:{key}")
        reset_in = max(0, int(stats.reset_time - time.time()) + 1)
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(reset_in),
        }
        if not allowed:
            raise RateLimited(headers={**headers, "Retry-After": str(reset_in)})
        response.headers.update(headers)


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _limit_auth(request: Request, response: Response) -> None:
    await _limiter(request).check(scope="auth", key=client_address(request), response=response)


# Per-user limits run after authentication, so anonymous noise never spends a user's budget.
async def _limit_chat(request: Request, response: Response, user: CurrentUser) -> None:
    await _limiter(request).check(scope="chat", key=user.id, response=response)


async def _limit_task_write(request: Request, response: Response, user: CurrentUser) -> None:
    await _limiter(request).check(scope="task_write", key=user.id, response=response)


AuthRateLimit = Depends(_limit_auth)
ChatRateLimit = Depends(_limit_chat)
TaskWriteRateLimit = Depends(_limit_task_write)
