"""Migrations 0006 (the client registry) and 0007 (people and their sessions) each upgrade an
existing database at the revision before them, matching the table definitions exactly, and
go down again."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.store.db import Database
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import metadata


@pytest.mark.parametrize(("before", "revision", "tables"), [
    ("0005_workflow_cursor", "0006_clients", {"auth_client", "auth_jti"}),
    ("0006_clients", "0007_users", {"auth_user", "auth_session"}),
])
def test_upgrades_the_previous_revision_and_downgrades(database_url: str, before: str,
                                                       revision: str, tables: set[str]) -> None:
    database = Database(database_url)
    config = alembic_config(database)
    try:
        upgrade(database)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, before)
        assert not tables & set(inspect(database.engine).get_table_names())
        upgrade(database, revision)
        assert set(inspect(database.engine).get_table_names()) >= tables
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            diffs = [d for d in compare_metadata(context, metadata)
                     if any(t in repr(d) for t in tables)]
        assert diffs == []
    finally:
        upgrade(database)
        database.dispose()
