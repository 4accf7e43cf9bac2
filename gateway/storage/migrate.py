"""Alembic migrations, driven from code so an installed socialgate needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.storage.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(database: Database, secret_key: bytes | None = None, *, to: str = "head") -> None:
    """Bring the schema to the newest revision (or ``to``); a database already there is left untouched.

    ``secret_key`` is the service's key, for a revision that must derive something from it to
    convert existing rows (0004's media URL tokens); a revision that needs it and lacks it fails.
    """

    def run(sync_connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        config.attributes["secret_key"] = secret_key
        command.upgrade(config, to)

    async with database.write_engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(database: Database) -> str | None:
    def read(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)
