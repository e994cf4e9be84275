"""The task tools over stdio: the official MCP client starting `todochat mcp` as a desktop client
does, on both engines. Effects are checked through the REST API on the same database."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from mcp.server.mcpserver.exceptions import ToolError

import mcp
from mcp import MCPError, StdioServerParameters
from tests.conftest import User, token_for
from tests.mcp_support import (
    assert_tool_schemas,
    data,
    error_text,
    stdio_client,
    stdio_env,
    todochat_command,
)
from todochat.auth.tokens import Principal
from todochat.mcp.stdio import token_identity


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """A folder with no .env, like the one a desktop client starts servers in."""
    return tmp_path


async def _rest_titles(client: httpx.AsyncClient, user: User) -> dict[int, dict]:
    r = await client.get(user.url("/tasks"), headers=user.headers)
    assert r.status_code == 200, r.text
    return {t["id"]: t for t in r.json()}


async def _run_cli(env: dict[str, str], cwd: Path, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *todochat_command(),
        "mcp",
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_tool_list_names_the_five_tools_and_no_user_id(database_url, user, cwd) -> None:
    async with stdio_client(database_url, user.token, cwd) as client:
        tools = (await client.list_tools()).tools
    assert_tool_schemas(tools)


async def test_each_tool_acts_on_the_token_users_tasks(database_url, client, user, cwd) -> None:
    async with stdio_client(database_url, user.token, cwd) as mcp_client:
        added = data(await mcp_client.call_tool("add_task", {"title": "Water the plants"}))
        assert added["status"] == "created" and added["title"] == "Water the plants"
        task_id = added["task_id"]
        stored = (await _rest_titles(client, user))[task_id]
        assert (stored["user_id"], stored["title"], stored["completed"]) == (
            user.id,
            "Water the plants",
            False,
        )

        updated = data(
            await mcp_client.call_tool(
                "update_task", {"task_id": task_id, "description": "the ferns too"}
            )
        )
        assert updated == {"task_id": task_id, "status": "updated", "title": "Water the plants"}
        assert (await _rest_titles(client, user))[task_id]["description"] == "the ferns too"

        assert [t["id"] for t in data(await mcp_client.call_tool("list_tasks"))] == [task_id]

        done = data(await mcp_client.call_tool("complete_task", {"task_id": task_id}))
        assert done["status"] == "completed"
        assert (await _rest_titles(client, user))[task_id]["completed"] is True
        pending = data(await mcp_client.call_tool("list_tasks", {"status": "pending"}))
        assert pending == []

        deleted = data(await mcp_client.call_tool("delete_task", {"task_id": task_id}))
        assert deleted == {"task_id": task_id, "status": "deleted", "title": "Water the plants"}
        assert await _rest_titles(client, user) == {}


async def test_two_users_connected_at_once_see_only_their_own(
    database_url, client, new_user, cwd
) -> None:
    alice, bob = new_user(), new_user()
    async with (
        stdio_client(database_url, alice.token, cwd) as a,
        stdio_client(database_url, bob.token, cwd) as b,
    ):
        await asyncio.gather(
            a.call_tool("add_task", {"title": "alice's"}),
            b.call_tool("add_task", {"title": "bob's"}),
        )
        seen_a, seen_b = await asyncio.gather(a.call_tool("list_tasks"), b.call_tool("list_tasks"))
        bobs_id = data(seen_b)[0]["id"]
        refused = await a.call_tool("delete_task", {"task_id": bobs_id})
        assert error_text(refused) == f"Task {bobs_id} not found"
    assert [t["title"] for t in data(seen_a)] == ["alice's"]
    assert [t["title"] for t in data(seen_b)] == ["bob's"]
    assert [t["title"] for t in (await _rest_titles(client, bob)).values()] == ["bob's"]


async def test_user_id_argument_must_be_the_token_user(database_url, user, other_user, cwd):
    async with stdio_client(database_url, user.token, cwd) as client:
        refused = await client.call_tool("add_task", {"title": "x", "user_id": other_user.id})
        assert "user_id does not match" in error_text(refused)
        assert data(await client.call_tool("list_tasks", {"user_id": user.id})) == []


# Refusals come before the database is touched, so these need no engine: the SQLite file
# they name must not even be created.


async def test_without_token_it_exits_with_a_message_on_stderr(cwd) -> None:
    database = cwd / "untouched.db"
    code, out, err = await _run_cli(stdio_env(f"sqlite+aiosqlite:///{database}", None), cwd)
    assert code == 1
    assert out == b""
    assert b"TODOCHAT_TOKEN is not set" in err

    with pytest.raises(ExceptionGroup) as failure:
        async with stdio_client(f"sqlite+aiosqlite:///{database}", None, cwd) as client:
            await client.list_tools()
    assert failure.group_contains(MCPError, depth=None)
    assert not database.exists()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        token_for("someone", ttl=-60),
        token_for("someone", secret="another-secret-that-is-long-enough-0123456789"),
    ],
    ids=["garbage", "expired", "foreign-secret"],
)
async def test_bad_token_exits_with_a_message_and_no_output(cwd, token) -> None:
    database = cwd / "untouched.db"
    code, out, err = await _run_cli(stdio_env(f"sqlite+aiosqlite:///{database}", token), cwd)
    assert code == 1
    assert out == b""
    assert b"TODOCHAT_TOKEN is not a valid token" in err
    assert token.encode() not in err
    assert not database.exists()


async def test_stdout_carries_only_the_protocol(database_url, user, cwd) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "add_task", "arguments": {"title": "Raw"}},
        },
    ]
    stdin = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    env = stdio_env(database_url, user.token, LOG_LEVEL="DEBUG")
    proc = await asyncio.create_subprocess_exec(
        *todochat_command(),
        "mcp",
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    await proc.stdin.drain()
    replies = {}
    while len(replies) < 3:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert line, "the server closed stdout early"
        message = json.loads(line)  # every line of stdout is a JSON-RPC message
        assert message["jsonrpc"] == "2.0"
        replies[message["id"]] = message
    proc.stdin.close()
    rest, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    assert rest == b""
    assert b"serving the task tools on stdio" in err  # the logs went to stderr
    assert replies[3]["result"]["structuredContent"]["status"] == "created"


def test_a_token_that_expires_while_serving_stops_the_tools() -> None:
    live = token_identity(Principal(id="u1", expires_at=int(time.time()) + 60))
    assert live(None) == "u1"  # type: ignore[arg-type]
    expired = token_identity(Principal(id="u1", expires_at=int(time.time()) - 1))
    with pytest.raises(ToolError, match="TODOCHAT_TOKEN has expired"):
        expired(None)  # type: ignore[arg-type]


async def test_without_database_url_it_refuses_in_one_line(cwd, user) -> None:
    env = stdio_env("unused", user.token)
    del env["DATABASE_URL"]
    code, out, err = await _run_cli(env, cwd)
    assert code == 1
    assert out == b""
    [line] = err.decode().splitlines()
    assert line.startswith("todochat mcp: DATABASE_URL is not set")
    assert "--default-database" in line
    assert list(cwd.iterdir()) == []  # no database, no data/ folder


async def test_told_to_it_uses_the_default_database_in_the_working_directory(cwd, user) -> None:
    command, *args = todochat_command()
    env = stdio_env("unused", user.token)
    del env["DATABASE_URL"]
    params = StdioServerParameters(
        command=command, args=[*args, "mcp", "--default-database"], env=env, cwd=cwd
    )
    async with mcp.Client(params) as client:
        added = data(await client.call_tool("add_task", {"title": "Local"}))
    assert added["status"] == "created"
    assert (cwd / "data" / "todochat.db").is_file()
