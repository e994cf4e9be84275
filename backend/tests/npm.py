"""npm packages of the tests (the `ai` reader, the MCP TypeScript SDK client): installed with
`npm ci` from the committed lock file, never skipped in CI."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _npm_ci(directory: Path) -> str | None:
    """`npm ci` from the committed lock, once per change of the lock; None, or why not."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return f"node and npm are needed for {directory.name}"
    stamp = directory / "node_modules" / ".installed-lock"
    lock = (directory / "package-lock.json").read_text()
    with open(directory / ".npm-ci.lock", "w") as guard:
        # Test workers may start at once; one installs, the others wait for it.
        fcntl.flock(guard, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == lock:
            return None
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr[-2000:]}"
        stamp.write_text(lock)
    return None


def require_npm_packages(directory: Path) -> None:
    """Install `directory`'s packages, or skip the test (fail it under CI=true)."""
    problem = _npm_ci(directory)
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
