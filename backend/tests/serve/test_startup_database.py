"""`todochat migrate` and `todochat serve` against a database they cannot use: a database that
refuses connections is waited for (DB_STARTUP_WAIT_S), one that cannot be used is one JSON log
line and exit status 1, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults import free_port
from tests.served import served_env

pytestmark = pytest.mark.slow


def _run(tmp: Path, url: str, *command: str, wait_s: str = "1") -> tuple[int, list[dict], str]:
    env = served_env(url, DB_STARTUP_WAIT_S=wait_s)
    done = subprocess.run(
        [sys.executable, "-m", "todochat.cli", *command],
        cwd=tmp,
        env=env,
        capture_output=True,
        timeout=60,
    )
    out = done.stdout.decode()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return done.returncode, records, out + done.stderr.decode()


def _unusable_urls(database_url: str, tmp: Path) -> tuple[str, str]:
    """(refuses connections for now, can never be used) on the engine of `database_url`."""
    if database_url.startswith("sqlite"):
        # SQLite opens any path; a file that is not a database fails at the first statement.
        garbage = tmp / "not-a-database.db"
        garbage.write_bytes(b"this is not a SQLite file" * 100)
        # A SQLite database is never "not yet reachable": both cases are the same failure.
        return f"sqlite+aiosqlite:///{garbage}", f"sqlite+aiosqlite:///{garbage}"
    base, name = database_url.rsplit("/", 1)
    credentials = base.split("@", 1)[0]
    closed = f"{credentials}@127.0.0.1:{free_port()}/{name}"
    missing = f"{base}/todochat_no_such_database"
    return closed, missing


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
async def test_a_database_that_cannot_be_used_is_one_line_and_exit_1(
    database_url: str, tmp_path: Path, command: list[str]
) -> None:
    _closed, missing = _unusable_urls(database_url, tmp_path)
    started = time.monotonic()
    code, records, everything = _run(tmp_path, missing, *command, wait_s="30")
    took = time.monotonic() - started
    assert code == 1
    assert "Traceback" not in everything
    errors = [r for r in records if r["level"] == "ERROR"]
    assert [r["message"] for r in errors] == ["cannot migrate the database"]
    # Not a failure that waiting can mend: no wait, whatever DB_STARTUP_WAIT_S says.
    assert not [r for r in records if r["message"] == "database not reachable yet, waiting"]
    assert took < 20
    if not database_url.startswith("sqlite"):
        assert errors[0]["sqlstate"] == "3D000"  # invalid_catalog_name


async def test_a_database_that_refuses_connections_is_waited_for(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        # A SQLite file is opened, never connected to: nothing refuses. The same command on
        # the same engine answers a file it cannot use at once, as the test above shows.
        code, records, everything = _run(tmp_path, database_url, "migrate")
        assert code == 0, everything
        assert "Traceback" not in everything
        return
    closed, _missing = _unusable_urls(database_url, tmp_path)
    code, records, everything = _run(tmp_path, closed, "migrate", wait_s="1.5")
    assert code == 1
    assert "Traceback" not in everything
    waits = [r for r in records if r["message"] == "database not reachable yet, waiting"]
    assert len(waits) >= 2  # 0.25 s, 0.5 s, 1 s: at least two waits fit in 1.5 s
    assert records[-1]["message"] == "cannot migrate the database"
    # And with the database there, the same command migrates (already at head: a no-op).
    code, records, everything = _run(tmp_path, database_url, "migrate")
    assert code == 0, everything
    assert not [r for r in records if r["level"] in ("WARNING", "ERROR")]
