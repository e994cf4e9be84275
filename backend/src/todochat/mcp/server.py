"""The MCP server of the five task tools, one instance per transport: the agent (in-process),
`/mcp` (streamable HTTP) and `todochat mcp` (stdio).

`create_mcp_server` composes the parts: a `TaskToolServer`, the tools (tools.py) and the
`Identity` that says whose tasks they act on (identity.py).
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from todochat import __version__
from todochat.config import Settings
from todochat.db import Database
from todochat.mcp.identity import Identity
from todochat.mcp.tools import add_task_tools, in_our_words
from todochat.ratelimit import RateLimiter

SERVER_INSTRUCTIONS = (
    "Tools for managing the authenticated user's todo list. Every call acts on that user's own "
    "tasks only; ids of other users' tasks behave as if they did not exist."
)

# Arguments a tool takes without declaring them: `user_id` from clients of the original tool
# list, checked against the authenticated user (`identity.user_of`).
UNDECLARED_ARGUMENTS = frozenset({"user_id"})
_EXTRA_FORBIDDEN = "Extra inputs are not permitted"


class TaskToolServer(MCPServer):
    """An `MCPServer` whose tools refuse arguments they do not declare, as the REST API refuses
    unknown fields, and whose argument errors are in the API's words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._declared: dict[str, frozenset[str]] | None = None

    async def _declared_arguments(self, name: str) -> frozenset[str] | None:
        if self._declared is None:  # the tools are all registered by the first call
            self._declared = {
                tool.name: frozenset(tool.input_schema.get("properties", {}))
                for tool in await self.list_tools()
            }
        return self._declared.get(name)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        declared = await self._declared_arguments(name)
        if declared is not None:
            accepted = declared | UNDECLARED_ARGUMENTS
            unknown = [key for key in arguments if key not in accepted]
            if unknown:
                # What REST says of an unknown field.
                raise ToolError("; ".join(f"{key}: {_EXTRA_FORBIDDEN}" for key in unknown))
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise  # a crash inside a tool stays a crash, its text on the server
        except ToolError as exc:
            cause = exc.__cause__
            # The SDK's refusal of the arguments, in the API's words.
            if isinstance(cause, ValidationError):
                raise ToolError(in_our_words(cause)) from cause
            # A tool's own refusal ("Task 7 not found"), without the SDK's "Error executing
            # tool complete_task: " before it. The chain stays: the agent reads causes.
            if isinstance(cause, ToolError):
                raise type(cause)(str(cause)) from cause
            raise


def create_mcp_server(
    *,
    database: Database,
    identity: Identity,
    limiter: RateLimiter,
    count_calls: bool,
    settings: Settings,
    **server_options: Any,
) -> MCPServer:
    """Build one MCP server instance; `server_options` carry transport auth settings.

    `count_calls`: every call spends RATE_LIMIT_MCP (outside clients). The agent's server does
    not: its calls are bounded per turn, and its turns by RATE_LIMIT_CHAT.
    """
    server = TaskToolServer(
        "todochat",
        version=__version__,
        instructions=SERVER_INSTRUCTIONS,
        log_level="WARNING",
        **server_options,
    )
    add_task_tools(
        server,
        database=database,
        identity=identity,
        limiter=limiter,
        count_calls=count_calls,
        settings=settings,
    )
    return server
