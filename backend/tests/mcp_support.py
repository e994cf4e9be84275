"""Helpers for the MCP client tests: a real uvicorn server on 127.0.0.1, the official `mcp`
client over streamable HTTP and over stdio, and what every client must see in the tool list."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

import mcp
import todochat
from mcp import StdioServerParameters
from tests.conftest import TEST_SECRET
from todochat.config import Settings
from todochat.main import create_app

TOOL_NAMES = {"add_task", "list_tasks", "complete_task", "delete_task", "update_task"}


class LiveServer:
    """The whole app served by uvicorn on 127.0.0.1 in a thread of its own (its own event loop,
    as in production): the MCP client talks to it over a real socket."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    @property
    def mcp_url(self) -> str:
        return self.base + "/mcp"


def http_client(url: str, token: str | None) -> mcp.Client:
    """The official client over streamable HTTP, sending the token as a bearer header."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    transport = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))
    return mcp.Client(transport)


def todochat_command() -> list[str]:
    """The installed `todochat` script next to this interpreter, as a client would run it."""
    script = shutil.which("todochat", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "todochat.cli"]


def stdio_env(database_url: str, token: str | None, **extra: str) -> dict[str, str]:
    env = {
        # The code under test, not whatever checkout the `todochat` script was installed from.
        "PYTHONPATH": str(Path(todochat.__file__).resolve().parents[1]),
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        "PATH": os.environ.get("PATH", ""),
        **extra,
    }
    if token is not None:
        env["TODOCHAT_TOKEN"] = token
    return env


def stdio_client(database_url: str, token: str | None, cwd: Path, **extra: str) -> mcp.Client:
    """The official client over stdio, starting `todochat mcp` as a desktop client does."""
    command, *args = todochat_command()
    params = StdioServerParameters(
        command=command, args=[*args, "mcp"], env=stdio_env(database_url, token, **extra), cwd=cwd
    )
    return mcp.Client(params)


def data(result: CallToolResult) -> Any:
    """A successful tool call's JSON: a list tool's answer comes wrapped as {"result": [...]}."""
    assert not result.is_error, result.content
    structured = result.structured_content
    assert structured is not None, result.content
    return structured["result"] if set(structured) == {"result"} else structured


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(part, "text", "") for part in result.content)


def assert_tool_schemas(tools: list[Tool]) -> None:
    """What a client sees: five documented tools, the user never a parameter."""
    by_name = {t.name: t for t in tools}
    assert set(by_name) == TOOL_NAMES
    for tool in tools:
        schema = tool.input_schema
        assert schema["type"] == "object"
        assert "user_id" not in schema.get("properties", {}), tool.name
        assert tool.description and len(tool.description) > 20, tool.name
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"

    def props(name: str) -> dict[str, Any]:
        properties: dict[str, Any] = by_name[name].input_schema["properties"]
        return properties

    def required(name: str) -> set[str]:
        return set(by_name[name].input_schema.get("required", []))

    assert set(props("add_task")) == {"title", "description"}
    assert required("add_task") == {"title"}
    assert props("add_task")["title"]["type"] == "string"
    assert set(props("list_tasks")) == {"status"}
    assert required("list_tasks") == set()
    assert props("list_tasks")["status"]["enum"] == ["all", "pending", "completed"]
    assert props("list_tasks")["status"]["default"] == "all"
    for name in ("complete_task", "delete_task"):
        assert set(props(name)) == {"task_id"}
        assert required(name) == {"task_id"}
    assert set(props("update_task")) == {"task_id", "title", "description"}
    assert required("update_task") == {"task_id"}
    for name in ("complete_task", "delete_task", "update_task"):
        task_id = props(name)["task_id"]
        assert task_id["type"] == "integer" and task_id["minimum"] == 1
        assert task_id["maximum"] == 2**31 - 1

    # The REST API's limits, in the schema rather than only in the descriptions.
    def text(prop: dict[str, Any]) -> dict[str, Any]:
        [schema] = [s for s in prop.get("anyOf", [prop]) if s["type"] == "string"]
        return schema

    assert (
        text(props("add_task")["title"])["minLength"],
        text(props("add_task")["title"])["maxLength"],
    ) == (1, 200)
    assert text(props("update_task")["title"])["maxLength"] == 200
    for name in ("add_task", "update_task"):
        assert text(props(name)["description"])["maxLength"] == 1000

    # Every tool says what it answers: a typed object, never "any object".
    for tool in tools:
        out = tool.output_schema
        assert out is not None and out["type"] == "object", tool.name
        assert out.get("properties") and out.get("required"), tool.name
    for name, status in (
        ("add_task", "created"),
        ("complete_task", "completed"),
        ("delete_task", "deleted"),
        ("update_task", "updated"),
    ):
        out = by_name[name].output_schema
        assert out is not None
        assert set(out["required"]) == {"task_id", "status", "title"}
        assert out["properties"]["status"]["const"] == status
        assert out["properties"]["task_id"]["type"] == "integer"
    listed = by_name["list_tasks"].output_schema
    assert listed is not None and listed["required"] == ["result"]
    item = listed["$defs"]["ListedTask"]
    assert set(item["required"]) == {"id", "title", "description", "completed"}
