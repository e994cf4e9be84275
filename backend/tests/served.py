"""`todochat serve` in a process of its own on a free port, as users run it (migrations, then
uvicorn with this checkout's HTTP edge), for tests that need a real server and real sockets."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.faults import free_port

SRC = Path(__file__).resolve().parents[1] / "src"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def served_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `todochat serve` started by a test: this checkout's code, the
    offline model, no Redis (unless the caller names one), the caller's settings on top."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DATABASE"))},
        # This checkout's code, whatever package the interpreter has installed.
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "MODEL_PROVIDER": "offline",
        "LOG_LEVEL": "INFO",
        "SHUTDOWN_TIMEOUT_S": "5",
    }
    env.pop("REDIS_URL", None)
    return {**env, **settings}


class ServedApp:
    def __init__(self, workdir: Path, database_url: str, **env: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        limits = {
            "RATE_LIMIT_AUTH": "10000/minute",
            "RATE_LIMIT_TASK_WRITES": "10000/minute",
            "RATE_LIMIT_CHAT": "10000/minute",
        }
        self.env = served_env(database_url, **{**limits, **env})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServedApp:
        # Logs to a file: a pipe nobody reads would fill up and block the server.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "todochat.cli", "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=(self.workdir / "out.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Dies with the test process, even one killed before its teardown.
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.base_url) as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"server exited:\n{self.log()}"
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/health/live").status_code == 200:
                        return self
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crashed machine or the OOM killer: no shutdown, no cleanup."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def log(self) -> str:
        return (self.workdir / "out.log").read_text(errors="replace")
