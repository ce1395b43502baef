"""Engines and the few SQLite/PostgreSQL differences, in one place.

SQLite runs in WAL mode so readers never block the single writer; write transactions start
with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing half-way with
"database is locked". PostgreSQL uses row locks (``SELECT ... FOR UPDATE``) instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection

from gateway.store.reader import Reader, add_pg_session_options
from gateway.store.statements import Statements

log = logging.getLogger(__name__)
#: PostgreSQL channel notified by every transaction that appended outbox rows (sync wakes on it).
OUTBOX_CHANNEL = "gateway_outbox"


_OUTBOX_WRITTEN = "outbox_written"
_LISTENERS_DUE = "outbox_listeners_due"


def _forget_outbox(connection: Connection) -> None:
    """A rolled-back transaction (or a commit that failed) has nothing to tell."""
    connection.info.pop(_OUTBOX_WRITTEN, None)
    connection.info.pop(_LISTENERS_DUE, None)


class Database:
    """An engine plus what the store needs to know about its dialect."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.pool_size = pool_size
        self.engine = self._sqlite_engine() if self.is_sqlite else self._pg_engine(pool_size)
        self.statements = Statements(self.engine.dialect.name)
        # One writer at a time per process on SQLite: threads queue on this lock instead of
        # polling SQLite's busy handler, whose growing sleeps gave seconds-long tail latency.
        # begin_write() takes it; the transaction's commit or rollback releases it.
        self.write_lock = threading.RLock() if self.is_sqlite else None
        if self.write_lock is not None:
            event.listen(self.engine, "commit", self._release_write_lock)
            event.listen(self.engine, "rollback", self._release_write_lock)
        self.reader = Reader(self.engine, _sqlite_on_connect if self.is_sqlite else None)
        # Told when a transaction that appended outbox rows has committed: the in-process
        # delivery worker, so it routes the change at once instead of at its next poll.
        self.outbox_listeners: list[Callable[[], None]] = []
        event.listen(self.engine, "commit", self._outbox_commit)
        event.listen(self.engine, "rollback", _forget_outbox)
        event.listen(self.engine, "begin", lambda conn: self._tell_listeners(conn.info))
        event.listen(self.engine, "checkin", self._on_checkin)

    @staticmethod
    def mark_outbox(connection: Connection) -> None:
        """Note that this transaction appended outbox rows (see ``_outbox_commit``)."""
        connection.info[_OUTBOX_WRITTEN] = True

    def _outbox_commit(self, connection: Connection) -> None:
        """As a transaction with outbox rows commits: on PostgreSQL, ``NOTIFY`` inside it
        (delivered only if the commit succeeds, sql-notify.html), so delivery workers in
        any process wake up. This process's listeners are told later (``_tell_listeners``):
        this event comes before COMMIT, when other connections cannot see the rows yet."""
        if not connection.info.pop(_OUTBOX_WRITTEN, False):
            return
        if not self.is_sqlite:
            dbapi = connection.connection.dbapi_connection
            assert dbapi is not None
            dbapi.execute(f"NOTIFY {OUTBOX_CHANNEL}")
        connection.info[_LISTENERS_DUE] = True

    def _on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            self._tell_listeners(record.info)

    def _tell_listeners(self, info: dict[str, Any]) -> None:
        """Tell this process's listeners about a commit once it has completed: when its
        connection goes back to the pool or begins its next transaction, whichever is
        first (SQLAlchemy has no event after COMMIT itself)."""
        if info.pop(_LISTENERS_DUE, False):
            for listener in list(self.outbox_listeners):
                listener()

    def _sqlite_engine(self) -> Engine:
        database = self.url.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=32,
            max_overflow=64,
            hide_parameters=_hide_parameters(),
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _pg_engine(self, pool_size: int) -> Engine:
        engine = create_engine(self.url, pool_size=pool_size, max_overflow=pool_size * 2,
                               pool_pre_ping=True, hide_parameters=_hide_parameters())
        event.listen(engine, "do_connect",
                     lambda _dialect, _record, _cargs, params: add_pg_session_options(params))
        return engine

    def begin_write(self, connection: Connection) -> None:
        """Open a write transaction that holds the write lock from its first statement.

        On SQLite the process-wide writer lock is taken first and released when the
        transaction ends (commit or rollback, including a close that rolls back)."""
        if self.write_lock is None:
            connection.begin()
            return
        self.write_lock.acquire()
        connection.info["holds_write_lock"] = True
        connection.info["begin_immediate"] = True
        try:
            connection.begin()
        except BaseException:
            self._release_write_lock(connection)
            raise

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (see ``begin_write``) committed when the block ends normally
        and rolled back when it raises: for bookkeeping rows outside the Repository."""
        with self.engine.connect() as connection:
            self.begin_write(connection)
            yield connection
            connection.commit()

    def _release_write_lock(self, connection: Connection) -> None:
        if connection.info.pop("holds_write_lock", False) and self.write_lock is not None:
            self.write_lock.release()

    def dispose(self) -> None:
        self.reader.close()
        self.engine.dispose()


def _hide_parameters() -> bool:
    """Keep statement parameters (resource bodies, identifiers: PHI) out of database error
    messages, and so out of logs, unless the gateway logs at debug level."""
    return not logging.getLogger("gateway").isEnabledFor(logging.DEBUG)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (SQLAlchemy's documented
    # recipe for serializable SQLite transactions).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.info.pop("begin_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# Rows matched per distinct value of an index column, for a large store (SQLite's
# sqlite_stat1 format: https://www.sqlite.org/fileformat2.html#stat1tab). ``type`` and
# ``param`` say little; values, ids and row ids say a lot.
_TYPICAL_ROWS = {"type": 50_000, "param": 10_000, "patient": 50, "last_updated": 2, "rid": 5,
                 "id": 1, "version_id": 1, "seq": 1}
_STORE_SIZE = 1_000_000


def fix_sqlite_statistics(connection: Connection) -> None:
    """Give SQLite's planner fixed, representative statistics for the store's indexes.

    Without statistics SQLite prefers any equality on an index, e.g. ``resource.type =
    'CarePlan'``, and scans every CarePlan to answer ``CarePlan?patient=X`` instead of
    starting from the reference index. Statistics gathered by ANALYZE go stale as data grows
    and are costly to refresh; SQLite documents hand-written sqlite_stat1 rows as the way to
    pin good plans (https://www.sqlite.org/optoverview.html#manual_control_of_query_plans_using_sqlite_stat_tables).
    """
    indexes = connection.exec_driver_sql(
        "SELECT tbl_name, name FROM sqlite_schema WHERE type = 'index' "
        "AND tbl_name NOT LIKE 'sqlite_%' AND tbl_name != 'alembic_version'").fetchall()
    wanted = {(table, index, _typical_stat(connection, index)) for table, index in indexes}
    has_table = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").first() is not None
    if has_table and set(map(tuple, connection.exec_driver_sql(
            "SELECT tbl, idx, stat FROM sqlite_stat1").fetchall())) == wanted:
        return  # already in place: no write at start-up
    connection.exec_driver_sql("ANALYZE sqlite_schema")  # creates sqlite_stat1 if missing
    connection.exec_driver_sql("DELETE FROM sqlite_stat1")
    for row in sorted(wanted):
        connection.exec_driver_sql(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", row)
    connection.exec_driver_sql("ANALYZE sqlite_schema")  # reload the statistics


def _typical_stat(connection: Connection, index: str) -> str:
    columns = [row[2] for row in connection.exec_driver_sql(
        f'PRAGMA index_info("{index}")').fetchall()]
    estimates, rows = [], _STORE_SIZE
    for column in columns:
        rows = min(rows, _TYPICAL_ROWS.get(column, 3))
        estimates.append(rows)
    return " ".join(str(n) for n in [_STORE_SIZE, *estimates])
