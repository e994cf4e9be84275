"""The agent's side of the in-process MCP connection.

The Agents SDK ships stdio, SSE and streamable-HTTP MCP clients; all cost a transport per
server. Our MCP server lives in this process, so the agent calls it directly: a chat turn pays
no subprocess, no handshake, no tool listing and no JSON-RPC round trip. The MCP server stays
the single definition of the tools: a call runs the registered tool through
`MCPServer.call_tool`, with its own argument validation and result conversion, and with the
request's `_meta` and `params` in the tool's context, where the tools read the user (see
`todochat.mcp.identity`). Measured under load, the in-memory `mcp.Client` round trip (client
session, dispatcher, server runner and its middleware, serialising the result and validating it
again) cost about 7% of the server's CPU per turn.

`function_tools` converts the MCP tools into the SDK's function tools once, at start-up. Given
as `Agent(mcp_servers=...)`, the Runner would list and convert them again (strict JSON schemas,
deep copies) on every model step of every turn. The converted tools still call through this
server, with the user (and, in a keyed turn, the call's effect key) in `_meta` from
`tool_meta_resolver`, and with this server's failure handler.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar, cast

from agents import Agent, FunctionTool, RunContextWrapper, Tool
from agents.exceptions import ModelBehaviorError
from agents.mcp import MCPServer as AgentsMCPServer
from agents.mcp.util import MCPToolMetaContext, MCPUtil
from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, TextContent
from mcp.types import Tool as MCPTool
from mcp.types.version import LATEST_PROTOCOL_VERSION

from todochat.agent.items import BAD_ARGUMENTS_MESSAGE
from todochat.agent.turn_limits import REFUSED_KEY
from todochat.errors import DatabaseUnavailable
from todochat.idempotency.service import effect_key
from todochat.mcp.identity import EFFECT_META_KEY, REQUEST_META_KEY, USER_META_KEY
from todochat.mcp.tools import LimitReached

log = logging.getLogger("todochat.agent")
TContext = TypeVar("TContext")


class FixedToolsAgent(Agent[TContext]):
    """An agent whose tools are set once, at start-up, and always enabled.

    The Runner asks an agent for its tools at every model step (`get_all_tools`), and the
    SDK's answer starts one task per tool to check whether it is enabled: ten tasks of a
    two-step turn, each a pass of the event loop that waits behind every other turn of the
    worker (P11). Our tools are plain function tools with `is_enabled=True`, never changed
    after start-up, so the answer is the list itself. Any other kind of tool or a callable
    `is_enabled` goes the SDK's way.
    """

    async def get_all_tools(self, run_context: RunContextWrapper[TContext]) -> list[Tool]:
        tools = self.tools
        if self.mcp_servers or not all(
            isinstance(t, FunctionTool) and t.is_enabled is True for t in tools
        ):
            return await super().get_all_tools(run_context)
        return list(tools)


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


def _caused_by_outage(error: BaseException) -> bool:
    """Whether a tool's failure was the database being unreachable. The MCP server wraps what
    a tool raises (tool -> ToolError -> "Error executing tool"), so the cause is followed."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DatabaseUnavailable):
            return True
        cause = cause.__cause__
    return False


class ToolOutage(DatabaseUnavailable):
    """A tool could not reach the database; raised by the in-process call, once recognised."""


# The SDK's message for arguments that are not JSON (agents/mcp/util.py, `invoke_mcp_tool`).
_SDK_BAD_JSON = "Invalid JSON input for tool"


def _tool_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """A database outage ends the turn (503, safe to retry) instead of becoming a sentence
    the model apologises with: the client must not take a half-done turn for an answer.
    Other failures go back to the model in this service's words: the SDK's own text would
    echo the arguments and name the server's internals."""
    if isinstance(error, ToolOutage) or isinstance(error.__cause__, ToolOutage):
        # The run context tells the runner why the run stopped; see AgentRuntime.run_turn.
        ctx.context.database_outage = True
        raise error
    if isinstance(error, ModelBehaviorError) and str(error).startswith(_SDK_BAD_JSON):
        return BAD_ARGUMENTS_MESSAGE
    log.error(
        "tool failed",
        extra={"operation": "agent.tool", "error_type": type(error.__cause__ or error).__name__},
    )
    return "Not done: the tool failed because of an error on our side."


# Keywords OpenAI's strict function schemas do not take for strings (a request naming them is
# refused); the descriptions say the limits, and the tool checks them on every call (A2).
_STRICT_UNSUPPORTED = ("minLength", "maxLength", "pattern")


def _drop_string_limits(schema: Any) -> None:
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            for keyword in _STRICT_UNSUPPORTED:
                schema.pop(keyword, None)
        for value in schema.values():
            _drop_string_limits(value)
    elif isinstance(schema, list):
        for value in schema:
            _drop_string_limits(value)


class InProcessMCPServer(AgentsMCPServer):
    def __init__(self, server: MCPServer) -> None:
        super().__init__(
            use_structured_content=True,
            tool_meta_resolver=_user_meta,
            failure_error_function=_tool_failure,
        )
        self._server = server
        self._tools: list[MCPTool] = []

    @property
    def name(self) -> str:
        return "todochat"

    async def connect(self) -> None:
        self._tools = list(await self._server.list_tools())

    async def cleanup(self) -> None:
        return None

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
        for function_tool in tools:
            _drop_string_limits(cast(FunctionTool, function_tool).params_json_schema)
        return tools

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        arguments = arguments or {}
        params: dict[str, Any] = {"name": tool_name, "arguments": arguments}
        if meta is not None:
            params["_meta"] = meta
        # What the MCP server runner would hand the tool: this call's params and `_meta`. There
        # is no client session behind it, and the tools never talk back to one.
        request: ServerRequestContext[Any, Any] = ServerRequestContext(
            session=cast(Any, None),
            lifespan_context=None,
            protocol_version=LATEST_PROTOCOL_VERSION,
            method="tools/call",
            params=params,
            meta=cast(Any, meta),
        )
        context: Context[Any, Any] = Context(request_context=request, mcp_server=self._server)
        try:
            result = await self._server.call_tool(tool_name, arguments, context)
        except MCPError:
            raise
        except Exception as exc:
            if _caused_by_outage(exc):
                # The whole turn fails with 503 (see `_tool_failure`), not a tool error result.
                raise ToolOutage() from exc
            refusal = exc if isinstance(exc, LimitReached) else exc.__cause__
            if isinstance(refusal, LimitReached):
                # Marked, so that the runtime ends the turn saying what was not done.
                text = json.dumps({"error": str(refusal), REFUSED_KEY: "rate_limit"})
                return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
            # As the MCP server answers a client: the error becomes an error result the model
            # can read. A tool's own refusal ("Not authenticated") is not worth a log line.
            if not isinstance(exc, ToolError) or isinstance(exc, UnexpectedToolError):
                cause = exc.__cause__ or exc
                log.error(
                    "tool failed",
                    extra={"operation": f"tool.{tool_name}", "error_type": type(cause).__name__},
                )
            # {"error": ...}: what the agent has always read, and what the chat stores.
            text = json.dumps({"error": str(exc)})
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        if not isinstance(result, CallToolResult):
            raise RuntimeError(f"tool {tool_name} asked for input; in-process calls cannot")
        return result

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        raise KeyError(name)
