"""Schema migrations: the one Alembic history, applied by `todochat serve`, `todochat migrate`,
`todochat mcp` and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from todochat.config import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str | None = None, settings: Settings | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        cfg.attributes["database_url"] = database_url
    if settings is not None:
        cfg.attributes["settings"] = settings
    return cfg


def migrate(database_url: str | None = None, *, settings: Settings | None = None) -> None:
    if settings is None:
        settings = get_settings() if database_url is None else Settings(database_url=database_url)
    path = settings.sqlite_path()
    if path is not None:  # a fresh checkout has no data/ directory yet
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url, settings), "head")
