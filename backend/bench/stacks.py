"""Summarise py-spy's collapsed stacks (`py-spy record --format raw`) by library.

    python -m bench.stacks FILE [FILE...] [--top 25]

"self" is where the CPU was (the innermost frame's library); "inclusive" is the share of
samples with that library anywhere on the stack (a layer and everything it called).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Checked in order: the first pattern found in a frame's file path names its library.
LIBRARIES = (
    ("agents SDK", "/agents/"),
    ("MCP SDK", "/mcp/"),
    ("openai client", "/openai/"),
    ("http client (httpx)", "/httpx"),
    ("http client (httpx)", "/httpcore/"),
    ("http client (httpx)", "/h11/"),
    ("SQLAlchemy", "/sqlalchemy/"),
    ("sqlmodel", "/sqlmodel/"),
    ("asyncpg", "/asyncpg/"),
    ("pydantic", "/pydantic"),
    ("logging", "/logging/"),
    ("logging", "/pythonjsonlogger/"),
    ("json", "/json/"),
    ("FastAPI/Starlette", "/fastapi/"),
    ("FastAPI/Starlette", "/starlette/"),
    ("uvicorn", "/uvicorn/"),
    ("anyio", "/anyio/"),
    ("asyncio", "/asyncio/"),
    ("PyJWT", "/jwt/"),
    ("rate limit (limits)", "/limits/"),
    ("tenacity", "/tenacity/"),
    ("todochat: agent", "/todochat/agent/"),
    ("todochat: mcp", "/todochat/mcp/"),
    ("todochat: conversations", "/todochat/conversations/"),
    ("todochat: chat", "/todochat/chat/"),
    ("todochat: other", "/todochat/"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def library(frame: str) -> str:
    match = _FRAME.match(frame)
    path = "/" + (match.group("file") if match else frame)
    for name, marker in LIBRARIES:
        if marker in path:
            return name
    if match and "<" in path:
        return "builtins"
    return "other"


def summarise(paths: list[Path]) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            # py-spy puts the process/thread first; idle samples end in the event loop's poll.
            if frames and "select" in frames[-1] and "selectors" in frames[-1]:
                continue
            total += count
            libs = [library(f) for f in frames[1:] or frames]
            own[libs[-1]] += count
            for lib in set(libs):
                inclusive[lib] += count
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, own, inclusive = summarise(args.files)
    print(f"{total} busy samples")
    print(f"{'library':28} {'self':>7} {'inclusive':>10}")
    for lib, _ in inclusive.most_common(args.top):
        print(f"{lib:28} {own[lib] / total:7.1%} {inclusive[lib] / total:10.1%}")


if __name__ == "__main__":
    main()
