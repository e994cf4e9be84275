"""Debian programs some tests run for real (nginx, PgBouncer): found on PATH or /usr/sbin, else
installed with apt-get when this user can. Under CI=true a program that cannot be had fails the
test; it is never skipped there."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def debian_program(program: str, package: str) -> str:
    """The path of `program`, installing Debian's `package` if it is missing."""
    found = shutil.which(program, path=SBIN)
    if found:
        return found
    problem = f"{program} is not installed and this user cannot run apt-get"
    if os.geteuid() == 0 and shutil.which("apt-get", path=SBIN):
        # One installer at a time (pytest-xdist workers, other packages), and only once.
        with open("/tmp/todochat-apt-install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = shutil.which(program, path=SBIN)
            if found:
                return found
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            wait = ["-o", "DPkg::Lock::Timeout=600"]  # another install may hold the lock
            steps = (
                ["apt-get", *wait, "update", "-q"],
                ["apt-get", *wait, "install", "-y", "-q", "--no-install-recommends", package],
            )
            for step in steps:
                done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    problem = f"{' '.join(step)} failed: {done.stderr[-2000:]}"
                    break
        found = shutil.which(program, path=SBIN)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{program} is required in CI: {problem}")
    pytest.skip(problem)
