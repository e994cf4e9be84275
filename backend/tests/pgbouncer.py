"""A real PgBouncer (Debian's `pgbouncer`) on a free 127.0.0.1 port in front of the test
PostgreSQL, for the tests of the service behind a pooler (README: "Behind PgBouncer")."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tests.conftest import PG_ADMIN_URL
from tests.faults import free_port
from tests.packages import debian_program
from tests.served import _die_with_parent

PoolMode = Literal["transaction", "session"]


class PgBouncer:
    """`pgbouncer` in `mode`, forwarding every database name to the test PostgreSQL."""

    def __init__(self, mode: PoolMode, *, pool_size: int = 10) -> None:
        self.mode = mode
        self.pool_size = pool_size
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # PgBouncer refuses to run as root and then reads its files as the user it becomes:
        # a directory of its own, outside root's private pytest directory.
        self.user = "postgres" if _user_exists("postgres") else "nobody"
        self.dir = Path(tempfile.mkdtemp(prefix="todochat-pgbouncer-"))

    def url(self, database_url: str) -> str:
        """`database_url` (a database on the test PostgreSQL) reached through this PgBouncer."""
        parts = urlsplit(database_url)
        return parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.port}").geturl()

    def start(self) -> PgBouncer:
        binary = debian_program("pgbouncer", "pgbouncer")
        target = urlsplit(PG_ADMIN_URL)
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
* = host={target.hostname} port={target.port or 5432} user={target.username}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = any
pool_mode = {self.mode}
default_pool_size = {self.pool_size}
max_client_conn = 1000
logfile = {self.dir / "pgbouncer.log"}
pidfile = {self.dir / "pgbouncer.pid"}
"""
        )
        if os.geteuid() == 0:
            shutil.chown(self.dir, self.user)
            shutil.chown(config, self.user)
        command = [binary, *(["-u", self.user] if os.geteuid() == 0 else []), str(config)]
        self.proc = subprocess.Popen(
            command,
            stdout=(self.dir / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"pgbouncer exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"pgbouncer did not start:\n{self.log()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        texts = []
        for name in ("stdout.log", "pgbouncer.log"):
            with contextlib.suppress(OSError):
                texts.append((self.dir / name).read_text(errors="replace"))
        return "\n".join(texts)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
