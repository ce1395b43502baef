"""Schema migrations with Alembic, so an existing database upgrades in place."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.store.db import Database, fix_sqlite_statistics

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url",
                           database.url.render_as_string(hide_password=False))
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe on every start)."""
    config = alembic_config(database)
    # A write transaction from the first statement (BEGIN IMMEDIATE on SQLite), so a
    # migration beside another process's writes waits for its turn instead of failing.
    with database.write() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if database.is_sqlite:
            fix_sqlite_statistics(connection)


def current(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def make_revision(database: Database, message: str) -> None:
    """Autogenerate a new revision from the table definitions (for developers)."""
    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
