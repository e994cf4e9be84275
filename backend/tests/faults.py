"""Fault injectors for the resilience tests: real sockets, real servers, nothing mocked.

- `TcpProxy`: a TCP forwarder on 127.0.0.1 in front of the shared PostgreSQL. `cut()` resets
  every connection and closes the port (the database is unreachable: connection refused);
  `blackhole()` accepts connections and never answers (a hung database); `restore()` opens
  the port again.
- `RedisServer`: a private redis-server on a free port, killed with SIGKILL.
- `LogCapture`: a second handler on the app's own JSON formatter and filters.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "forward"
        # Drop every byte both ways without closing anything: a path that died silently.
        self.silent = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.mode = "forward"
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.silent:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            if self.mode == "blackhole":
                await reader.read()  # hold the connection, answer nothing
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _reset_all(self) -> None:
        for w in list(self._writers):
            transport = w.transport
            if not transport.is_closing():
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST, like a crashed server or a dead network path
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                transport.abort()
        self._writers.clear()

    async def cut(self) -> None:
        """Connections reset, port closed: every new connection is refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset_all()
        await asyncio.sleep(0)

    async def blackhole(self) -> None:
        """The port accepts, but nothing ever answers (and live connections die)."""
        self._reset_all()
        if self._server is None:
            await self.start()
        self.mode = "blackhole"

    async def restore(self) -> None:
        self._reset_all()
        if self._server is None:
            await self.start()
        self.mode = "forward"

    async def stop(self) -> None:
        await self.cut()


class RedisServer:
    """A private redis-server (never the shared one) on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required for the Redis fault tests"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class LogCapture:
    """Every record the app logs, formatted by the app's own JSON handler, one line each."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        root = logging.getLogger()
        app_handler = next(h for h in root.handlers if h.get_name() == "todochat")
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(app_handler.formatter)
        for f in app_handler.filters:
            self.handler.addFilter(f)
        self._level = root.level

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        root.addHandler(self.handler)
        return self

    def set_level(self, level: int) -> None:
        logging.getLogger().setLevel(level)

    def __exit__(self, *_: Any) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self._level)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]
