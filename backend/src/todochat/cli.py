"""`todochat serve` (migrate, then uvicorn), `todochat migrate`, `todochat mcp` (stdio)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pydantic import ValidationError

from todochat.config import DEFAULT_SQLITE_URL, ConfigError, Settings, get_settings
from todochat.logs import configure_logging
from todochat.migrate import migrate_at_start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="todochat")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations and start the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="apply migrations")
    mcp = sub.add_parser(
        "mcp",
        help="serve the task tools to an MCP client over stdio, as the user of $TODOCHAT_TOKEN",
        description="Apply migrations, then serve the task tools over stdin/stdout for the user "
        "named by the token in TODOCHAT_TOKEN, on the database named by DATABASE_URL. Logs go "
        "to stderr.",
    )
    mcp.add_argument(
        "--default-database",
        action="store_true",
        help=f"without DATABASE_URL, use {DEFAULT_SQLITE_URL} (relative to the working "
        "directory) instead of refusing to start",
    )
    args = parser.parse_args(argv)

    if args.command == "mcp":
        sys.exit(mcp_stdio(default_database=args.default_database))
    settings = get_settings()
    configure_logging(settings.log_level)
    if not migrate_at_start(settings):
        sys.exit(1)
    if args.command == "serve":
        from todochat.edge import EdgeLimits
        from todochat.serve import serve as run_server

        sys.exit(
            run_server(
                host=args.host or settings.host,
                port=args.port or settings.port,
                workers=args.workers,
                shutdown_timeout_s=settings.shutdown_timeout_s,
                log_level=settings.log_level,
                limits=EdgeLimits.from_settings(settings),
            )
        )


def _fail(message: str) -> int:
    print(f"todochat mcp: {message}", file=sys.stderr)
    return 1


def mcp_stdio(*, default_database: bool = False) -> int:
    """`todochat mcp`. Every refusal is one line on stderr and exit status 1: stdout is the
    protocol, so nothing else may ever reach it."""
    from todochat.mcp.stdio import TOKEN_ENV, StartupError, serve

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return _fail(
            f"{TOKEN_ENV} is not set. Sign up or sign in (POST /api/auth/signup or "
            f"/api/auth/signin) and put the access_token of the answer in {TOKEN_ENV}."
        )
    try:
        settings = Settings()
    except ConfigError as exc:
        return _fail(str(exc))
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]).upper() or "settings"
        return _fail(f"invalid setting {field}: {problem['msg']}")
    if "database_url" not in settings.model_fields_set and not default_database:
        # MCP clients start servers in a folder of their choosing: the default, a relative
        # SQLite path, would quietly be a new, empty database there.
        return _fail(
            "DATABASE_URL is not set: set it to the database the todochat service uses "
            "(or pass --default-database to use data/todochat.db under the working directory)."
        )
    configure_logging(settings.log_level, stream=sys.stderr)
    try:
        asyncio.run(serve(settings, token))
    except StartupError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    main()
