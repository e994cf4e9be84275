"""The pieces a scenario runs on: the bench database, the server, the fake upstream, and the
process figures (CPU time, resident memory) read from /proc.

The server runs as users run it: `todochat serve` (migrations, then uvicorn with uvloop and
httptools), production settings, the default pool, JSON logs at INFO to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.loadgen import Connection, HttpError

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DATABASE", "todochat_bench")
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Server settings given on the command line (`--env NAME=VALUE`), applied last.
EXTRA_ENV: dict[str, str] = {}
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# How the server is started: `todochat serve`, or a launcher that takes the same arguments
# (the turn timeline's, bench/timeline/launch.py).
SERVER_COMMAND: list[str] = [str(BIN / "todochat")]
# time.monotonic() of the last CpuMeter readings by name ("start", "end"): the measurement
# window, for instruments that keep their own records (bench/timeline).
WINDOW: dict[str, float] = {}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------------------------
# The bench database: dropped and recreated for every scenario, migrated by `todochat serve`.
# --------------------------------------------------------------------------------------------


class BenchDatabase:
    def __init__(self, admin_url: str = ADMIN_URL, name: str = BENCH_DB) -> None:
        self.admin_url = admin_url
        self.name = name
        base = admin_url.rsplit("/", 1)[0]
        self.dsn = f"{base}/{name}"
        self.app_url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def recreate(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            # FORCE ends only the connections to this database, i.e. a previous bench run's.
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def counters(self) -> dict[str, float]:
        """Sessions ever opened on the bench database (connection churn), commits, and the
        time PostgreSQL spent executing statements there (active_time, PostgreSQL 14+)."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            row = await conn.fetchrow(
                "SELECT sessions, xact_commit, active_time FROM pg_stat_database "
                "WHERE datname = $1",
                self.name,
            )
            now = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.name
            )
        finally:
            await conn.close()
        return {
            "sessions": float(row["sessions"]),
            "commits": float(row["xact_commit"]),
            "active_ms": float(row["active_time"]),
            "connections_now": float(now),
        }


class ConnectionSampler:
    """Samples how many connections the bench database has, once a second."""

    def __init__(self, db: BenchDatabase) -> None:
        self.db = db
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.db.admin_url)
        try:
            while True:
                n = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.db.name
                )
                self.samples.append(int(n))
                await asyncio.sleep(1.0)
        finally:
            await conn.close()

    def start(self) -> ConnectionSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --------------------------------------------------------------------------------------------
# PostgreSQL's own time per statement, from its log
# --------------------------------------------------------------------------------------------

# Overrides where PostgreSQL's log is looked for (a server on another host, a log shipped
# elsewhere): the path of the file it writes its log lines to.
PG_LOG_ENV = "BENCH_PG_LOG"
_DURATION = re.compile(
    r"LOG:  (?:[0-9A-Z]{5}: )?duration: (?P<ms>\d+(?:\.\d+)?) ms  "
    r"(?P<phase>parse|bind|execute fetch from|execute|statement)(?: (?P<name>[^:]*))?: "
    r"(?P<text>.*)"
)


def _prefix_pattern(prefix: str, database: str) -> re.Pattern[str] | None:
    """A regex for PostgreSQL's `log_line_prefix` that matches only lines of `database` and
    captures the backend pid; None when the prefix carries no pid or no database name, as the
    statements could then not be told apart from other databases' nor paired by backend."""
    parts: list[str] = []
    seen: set[str] = set()
    for m in re.finditer(r"%(-?\d+)?(.)|[^%]+", prefix):
        if m.group(2) is None:
            parts.append(re.escape(m.group(0)))
            continue
        escape = m.group(2)
        seen.add(escape)
        if escape == "p":
            parts.append(r"\s*(?P<pid>\d+)\s*")
        elif escape == "d":
            parts.append(r"\s*" + re.escape(database) + r"\s*")
        elif escape == "%":
            parts.append("%")
        elif escape != "q":  # %q prints nothing in a session's lines
            parts.append(".*?")
    if not {"p", "d"} <= seen:
        return None
    return re.compile("".join(parts) + _DURATION.pattern)


def _statement_kind(text: str) -> str:
    word = text.split(None, 1)[0].rstrip(";").upper() if text.strip() else ""
    return word or "(empty)"


@dataclass
class PgStatement:
    kind: str  # the statement's first word: SELECT, BEGIN, COMMIT...; "(empty)" for ";"
    ms: float
    # Part of the pool's pre-ping (BEGIN, ";", ROLLBACK at each checkout), not the app's work.
    ping: bool = False


def parse_statements(lines: list[bytes], pattern: re.Pattern[str]) -> list[PgStatement]:
    """One PgStatement per statement in PostgreSQL's duration lines, in log order.

    asyncpg's extended protocol logs a statement as up to three lines, parse (only when the
    statement is not yet prepared on that connection), bind and execute, each with its own
    duration: a statement's time is their sum, and it is done at its execute. PostgreSQL logs
    no execute for an empty statement (";", the pool's ping), which is done at its bind.
    BEGIN, COMMIT and ROLLBACK come through the simple protocol, a line each.
    """
    out: list[PgStatement] = []
    # Statement names are per connection, so the backend pid is part of the key.
    pending: dict[tuple[str, str], float] = {}
    # Per backend, the statements of its open transaction, to recognise a ping's.
    open_tx: dict[str, list[PgStatement]] = {}
    match = pattern.match
    for raw in lines:
        if b"duration: " not in raw:
            continue
        m = match(raw.decode("utf-8", "replace"))
        if m is None:
            continue
        ms = float(m["ms"])
        phase = m["phase"]
        kind = _statement_kind(m["text"])
        pid = m["pid"]
        if phase != "statement":
            # A portal's name follows the statement's after a slash.
            key = (pid, (m["name"] or "").split("/", 1)[0])
            if phase == "parse" or (phase == "bind" and kind != "(empty)"):
                pending[key] = pending.get(key, 0.0) + ms
                continue
            ms += pending.pop(key, 0.0)
        statement = PgStatement(kind, ms, ping=kind == "(empty)")
        out.append(statement)
        if kind == "BEGIN":
            open_tx[pid] = [statement]
        elif pid in open_tx:
            open_tx[pid].append(statement)
            if kind in ("COMMIT", "ROLLBACK", "END", "ABORT"):
                tx = open_tx.pop(pid)
                if [s.kind for s in tx] == ["BEGIN", "(empty)", "ROLLBACK"]:
                    for s in tx:
                        s.ping = True
    return out


def _postmaster_stderr(backend_pid: int) -> Path | None:
    """The file the postmaster's stderr goes to, seen from /proc: where PostgreSQL logs when
    its logging collector is off (Debian's pg_ctlcluster points it at
    /var/log/postgresql/postgresql-<version>-<cluster>.log). Only for a server on this host."""
    try:
        stat = Path(f"/proc/{backend_pid}/stat").read_text()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        target = Path(os.readlink(f"/proc/{ppid}/fd/2"))
    except (OSError, ValueError, IndexError):
        return None
    return target if target.is_file() else None


class PgStatementLog:
    """Every statement PostgreSQL runs for the bench database, with the time PostgreSQL itself
    took, read back from its log: the database's own figure, untouched by how long the client
    takes to read the answer.

    `log_min_duration_statement = 0` is set on the bench database only, and only while a
    scenario that reads it runs (and only when the log can be read): it makes PostgreSQL log
    every statement, which costs it CPU and fills a log other people's servers share. The
    setting applies to sessions opened afterwards, so it must be on before the server starts.
    """

    def __init__(self, db: BenchDatabase) -> None:
        self.db = db
        self.path: Path | None = None
        self.pattern: re.Pattern[str] | None = None
        # Why the figures could not be read; None while they can.
        self.unavailable: str | None = "not started"
        self.marks: dict[str, int] = {}
        self._settings_on = False

    async def start(self) -> PgStatementLog:
        conn = await asyncpg.connect(self.db.admin_url)
        try:
            self.unavailable = await self._locate(conn)
            if self.unavailable is None:
                await conn.execute(
                    f'ALTER DATABASE "{self.db.name}" SET log_min_duration_statement = 0'
                )
                self._settings_on = True
                # Bind parameters would add a line per statement, and the users' data with it.
                await conn.execute(
                    f'ALTER DATABASE "{self.db.name}" SET log_parameter_max_length = 0'
                )
        finally:
            await conn.close()
        if self.unavailable is not None:
            log(f"PostgreSQL's own statement times unavailable: {self.unavailable}")
        return self

    async def _locate(self, conn: asyncpg.Connection) -> str | None:
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("log_destination", "logging_collector", "log_line_prefix")
        }
        self.pattern = _prefix_pattern(settings["log_line_prefix"], self.db.name)
        if self.pattern is None:
            return f"log_line_prefix {settings['log_line_prefix']!r} has no %p or no %d"
        override = os.environ.get(PG_LOG_ENV)
        if override:
            self.path = Path(override)
        elif "stderr" not in (d.strip() for d in settings["log_destination"].split(",")):
            return f"log_destination is {settings['log_destination']!r}, not stderr"
        elif settings["logging_collector"] == "on":
            current = await conn.fetchval("SELECT pg_current_logfile('stderr')")
            if current is None:
                return "logging_collector is on but pg_current_logfile() is NULL"
            data_dir = await conn.fetchval("SHOW data_directory")
            # Relative to the data directory unless log_directory is absolute.
            self.path = Path(data_dir) / current
        else:
            self.path = _postmaster_stderr(await conn.fetchval("SELECT pg_backend_pid()"))
            if self.path is None:
                return f"cannot find where the postmaster's stderr goes; set {PG_LOG_ENV}"
        try:
            with self.path.open("rb"):
                pass
        except OSError as exc:
            return f"cannot read {self.path}: {exc.strerror}"
        return None

    def mark(self, name: str) -> None:
        if self.unavailable is None and self.path is not None:
            try:
                self.marks[name] = self.path.stat().st_size
            except OSError as exc:
                self.unavailable = f"cannot stat {self.path}: {exc.strerror}"

    def statements(self, start: str = "start", end: str = "end") -> list[PgStatement]:
        """The statements logged between two marks; empty, with `unavailable` saying why,
        when the log could not be read."""
        if self.unavailable is not None or self.path is None or self.pattern is None:
            return []
        if start not in self.marks or end not in self.marks:
            self.unavailable = "the window's log offsets were not taken"
            return []
        first, last = self.marks[start], self.marks[end]
        if last < first:
            self.unavailable = f"{self.path} shrank during the window (rotated?)"
            return []
        try:
            with self.path.open("rb") as f:
                f.seek(first)
                data = f.read(last - first)
        except OSError as exc:
            self.unavailable = f"cannot read {self.path}: {exc.strerror}"
            return []
        out = parse_statements(data.splitlines(), self.pattern)
        if not out:
            # Also what a translated log (lc_messages other than English) comes to.
            self.unavailable = (
                f"no duration line for database {self.db.name} in {self.path} "
                f"between offsets {first} and {last}"
            )
        return out

    def window_bytes(self, start: str = "start", end: str = "end") -> int:
        return self.marks.get(end, 0) - self.marks.get(start, 0)

    async def stop(self) -> None:
        if not self._settings_on:
            return
        conn = await asyncpg.connect(self.db.admin_url)
        try:
            for name in ("log_min_duration_statement", "log_parameter_max_length"):
                await conn.execute(f'ALTER DATABASE "{self.db.name}" RESET {name}')
            self._settings_on = False
        finally:
            await conn.close()


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The ppid is the second field after the parenthesised command name.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry.name))
    return kids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    return total


class ServerProcess:
    """`todochat serve` in a subprocess, production settings, logs to a file."""

    def __init__(self, *, database_url: str, workers: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.workers = workers
        self.secret = secrets.token_urlsafe(48)
        self.workdir = Path(tempfile.mkdtemp(prefix="todochat-bench-"))
        self.log_path = self.workdir / "server.log"
        self.env = self._environment(database_url, env)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def _environment(self, database_url: str, overrides: dict[str, str]) -> dict[str, str]:
        from todochat.config import Settings

        # Nothing from the caller's shell may change what is measured.
        own = {name.upper() for name in Settings.model_fields}
        env = {k: v for k, v in os.environ.items() if k.upper() not in own}
        env.update(
            {
                "APP_ENV": "production",
                "BETTER_AUTH_SECRET": self.secret,
                "DATABASE_URL": database_url,
                # Limits stay on (their cost is part of a turn) but high enough for a load run.
                "RATE_LIMIT_CHAT": "1000000/minute",
                "RATE_LIMIT_TASK_WRITES": "1000000/minute",
                "RATE_LIMIT_AUTH": "1000000/minute",
            }
        )
        env.pop("PYTHONUNBUFFERED", None)
        env.update(overrides)
        env.update(EXTRA_ENV)
        return env

    async def start(self) -> ServerProcess:
        self._log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *SERVER_COMMAND,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            cwd=self.workdir,  # no stray .env file is read
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start; log: {self.log_path}")
            # Every worker must be up, not only the first that takes a request.
            started = sum(
                1 for r in self.log_records() if r.get("message") == "Application startup complete."
            )
            if started >= self.workers and await _answers(self.port, "/health/live"):
                return self
            await asyncio.sleep(0.2)
        raise RuntimeError(f"server did not start; log: {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        if self.workers == 1:
            return [self.proc.pid]
        pids = []
        for pid in _children(self.proc.pid):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    pids.append(pid)
        return pids

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.worker_pids())

    def rss_bytes(self) -> int:
        return rss_bytes(self.worker_pids())

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_records(self, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
        with self.log_path.open("rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
        records = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        if self._log_file is not None:
            self._log_file.close()


class FakeUpstreamProcess:
    """The OpenAI-compatible fake in its own process, so it never shares a GIL with the load
    generator or the server."""

    def __init__(
        self,
        *,
        delay_s: float,
        first_token_s: float = 0.0,
        token_gap_s: float = 0.0,
        reply_words: int = 0,
    ) -> None:
        self.port = free_port()
        self.delay_s = delay_s
        # Streamed answers (the `stream` scenario): see fakes/openai_upstream.py.
        self.first_token_s = first_token_s
        self.token_gap_s = token_gap_s
        self.reply_words = reply_words
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeUpstreamProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fakes.openai_upstream",
                "--port",
                str(self.port),
                "--delay",
                str(self.delay_s),
                "--first-token",
                str(self.first_token_s),
                "--token-gap",
                str(self.token_gap_s),
                "--reply-words",
                str(self.reply_words),
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await _answers(self.port, "/bench/stats"):
                return self
            await asyncio.sleep(0.1)
        raise RuntimeError("fake upstream did not start")

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = json.loads(await self._get("/bench/stats"))
        return stats

    async def streams(self) -> list[dict[str, Any]]:
        """The fake's record of each streamed answer (times in time.monotonic() seconds)."""
        streams: list[dict[str, Any]] = json.loads(await self._get("/bench/streams"))
        return streams

    async def _get(self, path: str) -> bytes:
        conn = Connection("127.0.0.1", self.port)
        try:
            _, body = await conn.request("GET", path)
        finally:
            conn.close()
        return body

    def cpu_seconds(self) -> float:
        return cpu_seconds([self.proc.pid]) if self.proc else 0.0

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _answers(port: int, path: str) -> bool:
    conn = Connection("127.0.0.1", port)
    try:
        status, _ = await conn.request("GET", path)
        return status == 200
    except (HttpError, OSError):
        return False
    finally:
        conn.close()


def _system_busy_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _comm(pid: str) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.index("(") + 1 : stat.rindex(")")]


def _postgres_cpu_s() -> float:
    """CPU of every PostgreSQL process: live backends plus, through the postmaster's
    cutime/cstime, the backends that exited. Other people's queries are in it too."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
                continue
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            ppid = fields[1]
            if ppid in ("0", "1") or _comm(ppid) != "postgres":
                # The postmaster: it has reaped the backends that exited.
                total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


class CpuMeter:
    """CPU seconds spent by each party between two readings, and by everyone else."""

    def __init__(
        self,
        server: ServerProcess,
        fake: FakeUpstreamProcess | None = None,
        *,
        label: str = "run",
        profile_s: float | None = None,
    ) -> None:
        self.server = server
        self.fake = fake
        self.readings: dict[str, dict[str, float]] = {}
        self.label = label
        self.profile_s = profile_s

    def read(self, name: str) -> None:
        import resource

        if name == "start":
            self._start_profiles()
        own = resource.getrusage(resource.RUSAGE_SELF)
        WINDOW[name] = time.monotonic()
        self.readings[name] = {
            "t": WINDOW[name],
            "system": _system_busy_s(),
            "server": self.server.cpu_seconds(),
            "fake": self.fake.cpu_seconds() if self.fake else 0.0,
            "client": own.ru_utime + own.ru_stime,
            "postgres": _postgres_cpu_s(),
        }

    def _start_profiles(self) -> None:
        """With BENCH_PYSPY=DIR, py-spy samples every worker through the window (collapsed
        stacks for `python -m bench.stacks`). It costs the server some CPU: profile runs are
        for finding where the time goes, not for the published figures."""
        out_dir = os.environ.get("BENCH_PYSPY")
        if not out_dir or not self.profile_s:
            return
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for pid in self.server.worker_pids():
            subprocess.Popen(
                [
                    str(BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(self.profile_s)),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(Path(out_dir) / f"{self.label}-{pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def between(self, a: str = "start", b: str = "end") -> dict[str, float]:
        r0, r1 = self.readings[a], self.readings[b]
        d = {k: r1[k] - r0[k] for k in r0}
        d["other"] = d["system"] - d["server"] - d["fake"] - d["client"] - d["postgres"]
        return d
