"""The `Idempotency-Key` header as a dependency: validated, tied to the route and the policy."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request, Response

from todochat.config import SettingsDep
from todochat.errors import Unprocessable
from todochat.idempotency.service import REPLAYED_HEADER, IdempotencyKey
from todochat.metrics import Metrics

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyHeader:
    """The `Idempotency-Key` dependency. A key belongs to a scope: by default the route (method
    and path template); routes that are two ways of asking for one thing (a chat turn as JSON
    or as a stream) name the same scope, so a repeat on either replays the other."""

    def __init__(self, *, scope: str | None = None) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        response: Response,
        settings: SettingsDep,
        key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                # Documented here, checked below with a readable message.
                json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                description=(
                    "Makes the request safe to retry: a repeat with the same key and body "
                    "returns the first answer (with `Idempotent-Replayed: true`) instead of "
                    "acting again; the same key with another body is 422. 1-255 visible ASCII "
                    "characters, kept 24 hours, per user."
                ),
            ),
        ] = None,
    ) -> IdempotencyKey | None:
        """The request's key. Services only mark a replay; the header is set here, at the edge."""
        if key is None:
            return None
        if not _VALID_KEY.fullmatch(key):
            raise Unprocessable("Idempotency-Key must be 1-255 visible ASCII characters")
        route = request.scope.get("route")
        template = getattr(route, "path", request.url.path)
        metrics: Metrics | None = getattr(request.app.state, "metrics", None)

        def on_replay() -> None:
            response.headers[REPLAYED_HEADER] = "true"
            if metrics is not None:
                metrics.idempotent_replays.labels(template).inc()

        return IdempotencyKey(
            key=key,
            scope=self.scope or f"{request.method} {template}",
            ttl_s=settings.idempotency_ttl_s,
            wait_s=settings.idempotency_wait_s,
            lease_s=settings.chat_turn_lease_s,
            on_replay=on_replay,
        )


IdempotencyKeyDep = Annotated[IdempotencyKey | None, Depends(IdempotencyKeyHeader())]
# A chat turn's key, whether the turn is asked for as JSON or as a stream.
ChatTurnKeyDep = Annotated[
    IdempotencyKey | None, Depends(IdempotencyKeyHeader(scope="POST /api/{user_id}/chat"))
]
