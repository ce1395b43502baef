"""Point reads on a dedicated autocommit connection, without the ORM or the pool.

Reading one resource by id is the most frequent request an EHR makes. Through SQLAlchemy
Core it costs about half a millisecond of Python (statement construction, cache key, pool
checkout, BEGIN/ROLLBACK); the SQL itself takes a few microseconds. This module keeps one
plain DB-API connection per thread in autocommit mode (every SELECT sees the latest commit,
no transaction to open or roll back) and runs fixed SQL on it, so a read costs little more
than the query. Writes never go through here: the Repository is the only writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from gateway.errors import Gone, NotFound

log = logging.getLogger(__name__)

_CURRENT = (
    "SELECT r.rid, r.version_id, r.last_updated, r.deleted, v.body FROM resource r "
    "JOIN resource_version v ON v.rid = r.rid AND v.version_id = r.version_id "
    "WHERE r.type = %s AND r.id = %s"
)
_VERSION = (
    "SELECT rid, last_updated, deleted, body, method FROM resource_version "
    "WHERE type = %s AND id = %s AND version_id = %s"
)

_BEGIN_SQLITE = "BEGIN"
_BEGIN_POSTGRES = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


# PostgreSQL's default random_page_cost (4) models spinning disks. With the gateway's tables
# cached or on SSD it makes the planner scan a whole table instead of following a search
# index: at 10,000 CarePlans, ``CarePlan?patient=`` took a 10 ms sequential scan of
# ``resource`` instead of 1 ms of index look-ups. 1.1 is PostgreSQL's usual value for SSDs;
# it is set per session, on every connection the gateway opens.
PG_SESSION_OPTIONS = "-c random_page_cost=1.1"


def add_pg_session_options(params: dict[str, Any]) -> None:
    """Add ``PG_SESSION_OPTIONS`` to libpq connection parameters, after any the database
    URL gives (``?options=...``)."""
    given = params.get("options")
    params["options"] = f"{given} {PG_SESSION_OPTIONS}" if given else PG_SESSION_OPTIONS


class Reader:
    """Runs the point-read SQL on a per-thread autocommit connection."""

    def __init__(self, engine: Engine, on_connect: Any = None) -> None:
        self._engine = engine
        self._on_connect = on_connect
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def current(self, resource_type: str, resource_id: str) -> tuple[Any, ...]:
        """(rid, version_id, last_updated, deleted, body) of the current version."""
        row = self._fetch(_CURRENT, (resource_type, resource_id))
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known.")
        if row[3]:
            gone = Gone(f"{resource_type}/{resource_id} was deleted.",
                        headers={"ETag": f'W/"{row[1]}"'})
            gone.rid = row[0]
            raise gone
        return row

    def version(self, resource_type: str, resource_id: str, version_id: int) -> tuple[Any, ...]:
        """(rid, last_updated, deleted, body, method) of one version."""
        row = self._fetch(_VERSION, (resource_type, resource_id, version_id))
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id}/_history/{version_id} is not known.")
        if row[2]:
            gone = Gone(f"Version {version_id} of {resource_type}/{resource_id} is a "
                        "deletion.", headers={"ETag": f'W/"{version_id}"'})
            gone.rid = row[0]
            raise gone
        return row

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """The thread's connection inside one read-only transaction, so the queries of one
        search (page, total, includes) all see the same committed state. No pool checkout
        and no ORM: on SQLite (WAL) readers never wait for the writer; on PostgreSQL the
        transaction is REPEATABLE READ, one snapshot for all its statements."""
        connection = self._connection()
        try:
            connection.execute(_BEGIN_SQLITE if self._sqlite else _BEGIN_POSTGRES)
        except self._engine.dialect.loaded_dbapi.OperationalError:
            # A dropped connection (database restarted): reconnect once, then give up.
            self._discard()
            connection = self._connection()
            connection.execute(_BEGIN_SQLITE if self._sqlite else _BEGIN_POSTGRES)
        try:
            yield connection
        except BaseException:
            self._end(connection, "ROLLBACK")
            raise
        self._end(connection, "COMMIT")

    def _end(self, connection: Any, statement: str) -> None:
        try:
            connection.execute(statement)
        except self._engine.dialect.loaded_dbapi.Error:
            self._discard()  # a broken connection is not handed out again

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # closing a broken connection is best effort
                log.debug("closing a reader connection failed", exc_info=True)

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._sqlite:
            sql = sql.replace("%s", "?")
        try:
            return self._run(sql, params)
        except self._engine.dialect.loaded_dbapi.OperationalError:
            # A dropped connection (database restarted): reconnect once, then give up.
            self._discard()
            return self._run(sql, params)

    def _run(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _connect(self) -> Any:
        dialect = self._engine.dialect
        cargs, cparams = dialect.create_connect_args(self._engine.url)
        if self._sqlite:  # closed by dispose() from another thread
            cparams.update(check_same_thread=False, timeout=30)
        else:
            add_pg_session_options(cparams)
        connection = dialect.connect(*cargs, **cparams)
        if self._on_connect is not None:
            self._on_connect(connection, None)
        if not self._sqlite:
            connection.autocommit = True
        return connection

    def _discard(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)
            try:
                connection.close()
            except Exception:  # it is already broken
                log.debug("closing a broken reader connection failed", exc_info=True)
