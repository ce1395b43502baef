"""Migration 0002 adds the inbound message store to a 0001 database, matching the table
definitions exactly (no autogenerate differences), and removes it again on downgrade."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import metadata


def _downgrade(database: Database, revision: str) -> None:
    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _tables(database: Database) -> list[str]:
    return inspect(database.engine).get_table_names()


def test_0002_adds_the_inbound_message_table_and_downgrades(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)
        _downgrade(database, "0001")
        assert "inbound_message" not in _tables(database)
        upgrade(database, "0002_inbound_messages")
        assert "inbound_message" in _tables(database)
        with database.engine.connect() as connection:
            diffs = [d for d in compare_metadata(MigrationContext.configure(connection),
                                                 metadata) if "inbound_message" in repr(d)]
        assert diffs == []
    finally:
        upgrade(database)
        database.dispose()
