"""The schema is managed by Alembic: a fresh database migrates, an existing one upgrades."""

from __future__ import annotations

from gateway.store.db import Database
from gateway.store.migrate import current, upgrade


def test_upgrade_is_idempotent_and_reaches_head(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database)
    first = current(database)
    upgrade(database)
    assert current(database) == first
    assert first is not None
    database.dispose()
