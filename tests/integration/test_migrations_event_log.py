"""Migration 0003 adds the sync event log to an existing 0002 database, matching the table
definitions exactly (no autogenerate differences), and down again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, current, upgrade
from gateway.store.tables import metadata

SYNC_TABLES = {"sync_subscription", "sync_event", "sync_delivery", "sync_attempt",
               "sync_cursor"}


def _downgrade(database: Database, revision: str) -> None:
    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_0003_upgrades_a_0002_database_and_matches_the_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)  # the PostgreSQL test database may already be at head
        _downgrade(database, "0002_inbound_messages")
        assert not SYNC_TABLES & set(inspect(database.engine).get_table_names())
        upgrade(database, "0003_event_log")
        assert set(inspect(database.engine).get_table_names()) >= SYNC_TABLES
        upgrade(database)  # later revisions (0004: an index on sync_event) complete the tables
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            diffs = [d for d in compare_metadata(context, metadata) if "sync_" in repr(d)]
        assert diffs == []
        assert current(database) is not None
    finally:
        database.dispose()


def test_0003_downgrades(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0003_event_log")
        _downgrade(database, "0002_inbound_messages")
        assert not SYNC_TABLES & set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()


def test_0004_adds_and_drops_the_patient_index_of_sync_events(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("sync_event")}
        assert "ix_sync_event_patient" in indexes
        _downgrade(database, "0003_event_log")
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("sync_event")}
        assert "ix_sync_event_patient" not in indexes
        upgrade(database)
    finally:
        database.dispose()
