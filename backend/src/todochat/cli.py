"""`todochat serve` (migrate, then uvicorn), `todochat migrate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

from todochat.config import get_settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def migrate(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="todochat")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations and start the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="apply migrations")
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "migrate":
        migrate()
    elif args.command == "serve":
        import uvicorn

        migrate()
        uvicorn.run(
            "todochat.main:create_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
            # On SIGTERM: stop accepting, let in-flight turns finish for up to this long,
            # then cancel what is left and run the lifespan's shutdown (pool disposed).
            timeout_graceful_shutdown=settings.shutdown_timeout_s,
            proxy_headers=False,
        )


if __name__ == "__main__":
    main()
