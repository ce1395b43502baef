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
READ_CURRENT = (
    "SELECT r.rid, r.version_id, r.last_updated, r.deleted, v.body FROM resource r "
    "JOIN resource_version v ON v.rid = r.rid AND v.version_id = r.version_id "
    "WHERE r.type = :type AND r.id = :id")
CURRENT_ROW = "SELECT rid, version_id, deleted FROM resource WHERE type = :type AND id = :id"
# The row to replace with the body of its current version (no-op detection), locked on
# PostgreSQL; the join reads the version's primary key, so it is one probe more.
CURRENT_FOR_UPDATE = (
    "SELECT r.rid, r.version_id, r.deleted, v.body, v.last_updated FROM resource r "
    "JOIN resource_version v ON v.rid = r.rid AND v.version_id = r.version_id "
    "WHERE r.type = :type AND r.id = :id")
BUMP = (
    "UPDATE resource SET version_id = :version_id, last_updated = :last_updated, "
    "deleted = :deleted, patient = COALESCE(:patient, patient) "
    "WHERE rid = :rid AND version_id = :current")
CLEAR_INDEX = [f"DELETE FROM {table.name} WHERE rid = :rid" for table in INDEX_TABLES.values()]
PATIENT_OF = "SELECT patient FROM resource WHERE rid = :rid"
VERSION_BODY = ("SELECT body, last_updated FROM resource_version "
                "WHERE rid = :rid AND version_id = :version_id")


def by_identifiers(count: int) -> str:
    """Resources of one type holding any of ``count`` business identifiers (the
    ``identifier`` token: system :s<n>, value :c<n>), not deleted, in one statement."""
    pairs = " OR ".join(f"(t.code = :c{i} AND t.system = :s{i})" for i in range(count))
    return ("SELECT t.system, t.code, r.id FROM idx_token t JOIN resource r ON r.rid = t.rid "
            "WHERE t.type = :type AND t.param = 'identifier' AND r.deleted = :deleted "
            f"AND ({pairs}) LIMIT 1000")


def existing_any(count: int) -> str:
    """Which of ``count`` (type, id) pairs exist and are not deleted, in one statement."""
    pairs = " OR ".join(f"(type = :t{i} AND id = :i{i})" for i in range(count))
    return f"SELECT type, id FROM resource WHERE deleted = :deleted AND ({pairs})"


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

    def rowcount(self, conn: Connection, sql: str, params: dict[str, Any]) -> int:
        """Run one statement without a result; how many rows it changed."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._text(sql), params)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self._text(sql), rows)
        finally:
            cursor.close()
