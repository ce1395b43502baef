"""The write path's SQL, prebuilt once and run on the transaction's own DB-API cursor.

Building a SQLAlchemy Core statement costs tens of microseconds of Python per statement
(construction, coercion, cache key) and a create runs half a dozen of them; for the hottest
statements that cost more than the database work. The statements here are fixed text with
named parameters, run on the DB-API connection underneath the caller's SQLAlchemy
``Connection``, so they are part of the same transaction (the unit of work still owns
BEGIN / COMMIT / ROLLBACK).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from gateway.store.tables import INDEX_TABLES, outbox_table

_NAMED = re.compile(r":(\w+)")

INSERT_RESOURCE = (
    "INSERT INTO resource (type, id, version_id, last_updated, deleted, patient) "
    "VALUES (:type, :id, :version_id, :last_updated, :deleted, :patient) RETURNING rid")
INSERT_VERSION = (
    "INSERT INTO resource_version (rid, version_id, type, id, last_updated, method, deleted, "
    "body, patient) VALUES (:rid, :version_id, :type, :id, :last_updated, :method, :deleted, "
    ":body, :patient)")
EXISTING = "SELECT id FROM resource WHERE type = :type AND id = :id AND deleted = :deleted"


def _insert(table: Table) -> str:
    columns = [c.name for c in table.columns if not c.primary_key]
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})")


INSERT_INDEX = {kind: _insert(table) for kind, table in INDEX_TABLES.items()}
INSERT_OUTBOX = _insert(outbox_table)


class Statements:
    """Runs the prebuilt SQL in the dialect's parameter style on a connection's cursor."""

    def __init__(self, dialect_name: str) -> None:
        self._sqlite = dialect_name == "sqlite"
        self._cache: dict[str, str] = {}

    def _text(self, sql: str) -> str:
        text = self._cache.get(sql)
        if text is None:
            text = sql if self._sqlite else _NAMED.sub(r"%(\1)s", sql)
            self._cache[sql] = text
        return text

    def execute(self, conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
        """Run one statement; returns its rows (empty for statements without a result)."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._text(sql), params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self._text(sql), rows)
        finally:
            cursor.close()
