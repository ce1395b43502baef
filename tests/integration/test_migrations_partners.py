"""Migration 0010 brings an 0009 database's partner tables to the table definitions exactly
(no autogenerate differences), keeps its rows, and goes down again."""

from __future__ import annotations

import time

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import metadata

PARTNER_TABLES = ("partner", "partner_pull", "remote_resource", "write_conflict",
                  "pull_failure")


def _downgrade(database: Database, revision: str) -> None:
    config = alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_0010_upgrades_an_0009_database_and_matches_the_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)
        _downgrade(database, "0009_version_patient")
        assert "pull_failure" not in inspect(database.engine).get_table_names()
        with database.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO write_conflict (sid, delivery_id, destination, type, resource_id,"
                " version_id, http_status, created_at) VALUES (1, 2, 'https://p', 'CarePlan',"
                " 'c1', 3, 412, :now)"), {"now": time.time()})
        upgrade(database)
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT direction FROM write_conflict")
                                      ).scalars().all() == ["push"]
            context = MigrationContext.configure(connection)
            diffs = [d for d in compare_metadata(context, metadata)
                     if any(table in repr(d) for table in PARTNER_TABLES)]
        assert diffs == []
        _downgrade(database, "0009_version_patient")
        assert "pull_failure" not in inspect(database.engine).get_table_names()
        upgrade(database)
    finally:
        database.dispose()
