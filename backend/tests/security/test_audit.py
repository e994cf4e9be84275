"""docs/SECURITY_AUDIT.md claims nothing without a test: every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2]
AUDIT = BACKEND.parent / "docs" / "SECURITY_AUDIT.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_audit_names_exists() -> None:
    references = REFERENCE.findall(AUDIT.read_text())
    assert len(references) >= 60
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (BACKEND / file).is_file() or name not in _tests_in(BACKEND / file)
    ]
    assert missing == []


def test_every_security_test_is_named_in_the_audit() -> None:
    named = {name for _, name in REFERENCE.findall(AUDIT.read_text())}
    unnamed = [
        f"{path.name}::{name}"
        for path in sorted((BACKEND / "tests" / "security").glob("test_*.py"))
        if path.name != "test_audit.py"
        for name in sorted(_tests_in(path) - named)
    ]
    assert unnamed == []
