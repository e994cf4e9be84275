"""`todochat serve` (migrate, then uvicorn), `todochat migrate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

from todochat.config import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def migrate(database_url: str | None = None) -> None:
    settings = get_settings() if database_url is None else Settings(database_url=database_url)
    path = settings.sqlite_path()
    if path is not None:  # a fresh checkout has no data/ directory yet
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), "head")


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
            timeout_graceful_shutdown=30,
            proxy_headers=False,
        )


if __name__ == "__main__":
    main()
