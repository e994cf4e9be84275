"""The `db` bench scenario's reading of PostgreSQL's log: lines as PostgreSQL 15 wrote them
for the bench under Debian's log_line_prefix."""

from __future__ import annotations

import pytest
from bench.harness import _prefix_pattern, parse_statements

PREFIX = "%m [%p] %q%u@%d "
INSERT = "INSERT INTO messages (conversation_id,\n\t user_id) VALUES ($1::INTEGER, $2::VARCHAR)"


def line(pid: int, message: str, database: str = "todochat_bench") -> str:
    return f"2026-11-25 18:23:25.148 UTC [{pid}] postgres@{database} LOG:  {message}"


LOG = "\n".join(
    [
        line(12808, "duration: 0.023 ms  statement: BEGIN;"),
        line(12808, "duration: 0.050 ms  parse __asyncpg_stmt_21__: ;"),
        line(12808, "duration: 0.009 ms  bind __asyncpg_stmt_21__: ;"),
        line(12808, "duration: 0.018 ms  statement: ROLLBACK;"),
        line(12808, "duration: 0.013 ms  statement: BEGIN;"),
        line(12808, f"duration: 0.200 ms  parse __asyncpg_stmt_69__: {INSERT}"),
        line(12900, "duration: 9.000 ms  execute __asyncpg_stmt_69__: SELECT 1", "todochat_benchx"),
        line(12901, "duration: 0.300 ms  bind __asyncpg_stmt_69__: SELECT 1"),
        line(12808, f"duration: 0.039 ms  bind __asyncpg_stmt_69__: {INSERT}"),
        line(12808, f"duration: 0.124 ms  execute __asyncpg_stmt_69__: {INSERT}"),
        line(12901, "duration: 0.100 ms  execute __asyncpg_stmt_69__: SELECT 1"),
        "2026-11-25 18:23:25.158 UTC [2196] LOG:  checkpoint starting: time",
        line(12808, "duration: 2.488 ms  statement: COMMIT;"),
    ]
)


def test_bench_statements_sum_their_phases_per_backend() -> None:
    pattern = _prefix_pattern(PREFIX, "todochat_bench")
    assert pattern is not None
    statements = parse_statements(LOG.encode().splitlines(), pattern)
    got = [(s.kind, round(s.ms, 3), s.ping) for s in statements]
    assert got == [
        ("BEGIN", 0.023, True),
        ("(empty)", 0.059, True),
        ("ROLLBACK", 0.018, True),
        ("BEGIN", 0.013, False),
        # Another backend's statement of the same name is its own; another database's is not
        # there at all.
        ("INSERT", 0.363, False),
        ("SELECT", 0.4, False),
        ("COMMIT", 2.488, False),
    ]


@pytest.mark.parametrize("prefix", ["%m [%p] ", "%m %u@%d ", ""])
def test_bench_prefix_without_pid_or_database_is_refused(prefix: str) -> None:
    assert _prefix_pattern(prefix, "todochat_bench") is None
