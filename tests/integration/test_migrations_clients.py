"""Migration 0006 adds the client registry to an existing 0005 database, matching the table
definitions exactly, and down again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import metadata

TABLES = {"auth_client", "auth_jti"}


def test_0006_upgrades_a_0005_database_and_downgrades(database_url: str) -> None:
    database = Database(database_url)
    config = alembic_config(database)
    try:
        upgrade(database)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005_workflow_cursor")
        assert not TABLES & set(inspect(database.engine).get_table_names())
        upgrade(database, "0006_clients")
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            diffs = [d for d in compare_metadata(context, metadata)
                     if any(t in repr(d) for t in TABLES)]
        assert diffs == []
    finally:
        upgrade(database)
        database.dispose()
