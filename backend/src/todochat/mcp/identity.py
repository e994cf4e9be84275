"""Who a tool call acts for. The user is never a tool parameter: where it comes from depends on
the transport, and the `Identity` given to `create_mcp_server` decides which source is trusted:
the agent's run context (in-process), the bearer token (HTTP) or the token given at start-up
(stdio). The in-process agent also passes, in `_meta`, the chat request's id and a key for the
call (see the keys below).
"""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from todochat.logs import bind

# The in-process agent passes the authenticated user in the request's `_meta` under this key.
USER_META_KEY = "todochat/user_id"
# ...the chat request's id, for the logs of the tool's own work...
REQUEST_META_KEY = "todochat/request_id"
# ...and, in a turn sent with an Idempotency-Key, a key for this one call: a resumed turn that
# makes the same call again gets the first result instead of a second task. From another
# client it only ever dedupes that client's own calls.
EFFECT_META_KEY = "todochat/effect_key"

Identity = Callable[[Context], str | None]
"""Returns the authenticated user of a tool call, or None when there is none (it may also raise
`ToolError` to say why)."""


def identity_from_meta(ctx: Context) -> str | None:
    """In-process only: the agent runtime puts the request's user into `_meta`."""
    meta = ctx.request_context.meta or {}
    value = meta.get(USER_META_KEY)
    return value if isinstance(value, str) and value else None


def identity_from_access_token(_ctx: Context) -> str | None:
    """HTTP (`/mcp`): only the verified bearer token counts. `_meta` is written by the remote
    client, so on this transport it is never read."""
    token = get_access_token()
    return token.subject if token is not None and token.subject else None


def fixed_identity(user_id: str) -> Identity:
    """stdio: one process serves one user, verified at start-up."""
    return lambda _ctx: user_id


def meta_value(ctx: Context, name: str) -> str | None:
    meta = ctx.request_context.meta or {}
    value = meta.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def user_of(ctx: Context, identity: Identity) -> str:
    user_id = identity(ctx)
    if user_id is None:
        raise ToolError("Not authenticated")
    request_id = meta_value(ctx, REQUEST_META_KEY)
    bind(user_id=user_id, **({"request_id": request_id} if request_id else {}))
    # Clients that follow the original tool list may still send `user_id`; it must match.
    params = ctx.request_context.params or {}
    arguments = params.get("arguments") if isinstance(params, dict) else None
    claimed = arguments.get("user_id") if isinstance(arguments, dict) else None
    if claimed is not None and claimed != user_id:
        raise ToolError("user_id does not match the authenticated user")
    return user_id
