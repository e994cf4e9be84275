"""The agent's side of the in-process MCP connection.

The Agents SDK ships stdio, SSE and streamable-HTTP MCP clients; all cost a transport per
server. Our MCP server lives in this process, so this adapter holds one `mcp.Client` connected
to it directly at start-up: a chat turn pays no subprocess, no handshake and no tool listing.
"""

from __future__ import annotations

from typing import Any, cast

import mcp
from agents import RunContextWrapper
from agents.mcp import MCPServer as AgentsMCPServer
from agents.mcp.util import MCPToolMetaContext
from agents.tool import default_tool_error_function
from mcp.server import MCPServer
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, Tool

from todochat.errors import DatabaseUnavailable
from todochat.idempotency.service import effect_key
from todochat.mcp.server import EFFECT_META_KEY, REQUEST_META_KEY, USER_META_KEY


def _user_meta(ctx: MCPToolMetaContext) -> dict[str, Any]:
    # The user comes from the authenticated request (the run context), never from the model.
    turn = ctx.run_context.context
    meta: dict[str, Any] = {USER_META_KEY: turn.user_id}
    if turn.request_id:
        meta[REQUEST_META_KEY] = turn.request_id
    if turn.effect_scope is not None:
        # The n-th identical call of this keyed turn gets the same key on every attempt.
        arguments = ctx.arguments or {}
        signature = f"{ctx.tool_name}:{sorted(arguments.items())!r}"
        occurrence = turn.effect_counts.get(signature, 0) + 1
        turn.effect_counts[signature] = occurrence
        meta[EFFECT_META_KEY] = effect_key(turn.effect_scope, ctx.tool_name, arguments, occurrence)
    return meta


def _tool_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """A database outage ends the turn (503, safe to retry) instead of becoming a sentence
    the model apologises with: the client must not take a half-done turn for an answer."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DatabaseUnavailable):
            raise cause
        cause = cause.__cause__
    return default_tool_error_function(ctx, error)


def _is_database_outage(result: CallToolResult) -> bool:
    if not result.is_error:
        return False
    texts = [getattr(c, "text", "") for c in result.content]
    return any(DatabaseUnavailable.detail in t for t in texts)


class InProcessMCPServer(AgentsMCPServer):
    def __init__(self, server: MCPServer) -> None:
        super().__init__(
            use_structured_content=True,
            tool_meta_resolver=_user_meta,
            failure_error_function=_tool_failure,
        )
        self._server = server
        self._client: mcp.Client | None = None
        self._tools: list[Tool] = []

    @property
    def name(self) -> str:
        return "todochat"

    async def connect(self) -> None:
        client = mcp.Client(self._server)
        await client.__aenter__()
        self._client = client
        self._tools = list((await client.list_tools()).tools)

    async def cleanup(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.__aexit__(None, None, None)

    async def list_tools(
        self, run_context: RunContextWrapper[Any] | None = None, agent: Any = None
    ) -> list[Tool]:
        return self._tools

    @property
    def cached_tools(self) -> list[Tool] | None:
        return self._tools

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        if self._client is None:
            raise RuntimeError("the in-process MCP server is not connected")
        result: CallToolResult = await self._client.call_tool(
            tool_name, arguments or {}, meta=cast(Any, meta)
        )
        if _is_database_outage(result):
            raise DatabaseUnavailable()
        return result

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        raise KeyError(name)
