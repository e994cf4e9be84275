"""The agent's side of the in-process MCP connection.

The Agents SDK ships stdio, SSE and streamable-HTTP MCP clients; all cost a transport per
server. Our MCP server lives in this process, so this adapter holds one `mcp.Client` connected
to it directly at start-up: a chat turn pays no subprocess, no handshake and no tool listing.

`function_tools` converts the listed MCP tools into the SDK's function tools once, at start-up.
Given as `Agent(mcp_servers=...)`, the Runner would list and convert them again (strict JSON
schemas, deep copies) on every model step of every turn. The converted tools still call
through this MCP client, with the user in `_meta` from `tool_meta_resolver`.
"""

from __future__ import annotations

from typing import Any, cast

import mcp
from agents import FunctionTool, RunContextWrapper, Tool
from agents.mcp import MCPServer as AgentsMCPServer
from agents.mcp.util import MCPToolMetaContext, MCPUtil
from mcp.server import MCPServer
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult
from mcp.types import Tool as MCPTool

from todochat.mcp.server import USER_META_KEY


def _user_meta(ctx: MCPToolMetaContext) -> dict[str, Any]:
    # The user comes from the authenticated request (the run context), never from the model.
    return {USER_META_KEY: ctx.run_context.context.user_id}


class InProcessMCPServer(AgentsMCPServer):
    def __init__(self, server: MCPServer) -> None:
        super().__init__(use_structured_content=True, tool_meta_resolver=_user_meta)
        self._server = server
        self._client: mcp.Client | None = None
        self._tools: list[MCPTool] = []

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
    ) -> list[MCPTool]:
        return self._tools

    @property
    def cached_tools(self) -> list[MCPTool] | None:
        return self._tools

    async def function_tools(self, agent: Any) -> list[Tool]:
        """The MCP tools as the SDK's function tools, with strict schemas; call once, after
        `connect`, and give them to the agent as `tools=`."""
        tools: list[Tool] = await MCPUtil.get_function_tools(
            self, True, RunContextWrapper(context=None), agent
        )
        if not all(isinstance(t, FunctionTool) for t in tools):
            raise RuntimeError("MCP tools must convert to function tools")
        return tools

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        if self._client is None:
            raise RuntimeError("the in-process MCP server is not connected")
        result: CallToolResult = await self._client.call_tool(
            tool_name, arguments or {}, meta=cast(Any, meta)
        )
        return result

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        raise KeyError(name)
