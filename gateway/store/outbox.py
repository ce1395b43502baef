"""Readers of the outbox with durable cursors (``sync_cursor`` rows), for every consumer.

The repository writes one ``outbox`` row per change in the change's own transaction. A
consumer (the sync router, the coordination workflow runner) keeps how far it has read in a
``sync_cursor`` row named for it, and moves it in the same transaction as the work it did
for the rows it read: a crash rolls both back and the next run reads the same rows again.

Sequence gaps. On PostgreSQL a transaction takes its ``outbox.seq`` when it inserts and may
commit after a later one, so "seq > cursor" alone could skip a row that becomes visible
later. A reader therefore only consumes a contiguous run of sequence numbers after its
cursor: the rows before a gap at once, and nothing while the gap is right after the cursor,
since the transaction holding it usually commits within milliseconds (and its commit wakes
the consumers). Only a gap still there after ``GAP_GRACE_SECONDS`` makes the reader take
``LOCK TABLE outbox IN SHARE MODE``, which waits for every transaction that has inserted
outbox rows to finish; a gap still present then is a rolled-back transaction and is passed
for good. Taking that lock at every gap, as writers raced each other, held all writers up
behind it: most of a concurrent PostgreSQL write load's time. On SQLite, write transactions
are serialized, so gaps are always final.

Retention. Rows are dropped only when every consumer in ``CONSUMERS`` has read them.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.store.db import Database
from gateway.store.tables import outbox_table, sync_cursor_table

OB = outbox_table.c
C = sync_cursor_table.c
ROUTER = "router"
WORKFLOWS = "workflows"
CONSUMERS = (ROUTER, WORKFLOWS)
GAP_GRACE_SECONDS = 0.5


class OutboxCursor:
    """One consumer's position in the outbox."""

    def __init__(self, db: Database, name: str, batch_size: int = 500) -> None:
        self.db = db
        self.name = name
        self.batch_size = batch_size
        self._gap: tuple[int, float] | None = None  # (position, when first met)

    def has_work(self) -> bool:
        """A cheap read-only look: are there outbox rows after the cursor?"""
        with self.db.engine.connect() as conn:
            position = conn.execute(select(C.position).where(C.name == self.name)).scalar() or 0
            return conn.execute(select(OB.seq).where(OB.seq > position).limit(1)).first() \
                is not None

    def ensure(self) -> None:
        """Create the cursor row at 0 when it does not exist yet."""
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = dialect.insert(sync_cursor_table).values(name=self.name, position=0)
        with self.db.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=["name"]))

    def claim(self, conn: Connection) -> int | None:
        """Lock the cursor row in ``conn``'s transaction and return its position; None when
        another process holds it (``FOR UPDATE SKIP LOCKED``: one reader at a time)."""
        return conn.execute(select(C.position).where(C.name == self.name)
                            .with_for_update(skip_locked=True)).scalar()

    def rows(self, conn: Connection, position: int) -> list[Any]:
        """The next gap-free run of outbox rows after ``position`` (see module docstring)."""
        rows = self._read(conn, position)
        if self.db.is_sqlite:
            return rows
        run = _contiguous_run(rows, position)
        if run or not rows:
            self._gap = None
            return run
        now = time.monotonic()
        if self._gap is None or self._gap[0] != position:
            self._gap = (position, now)
        if now - self._gap[1] < GAP_GRACE_SECONDS:
            return []
        conn.execute(text("LOCK TABLE outbox IN SHARE MODE"))
        self._gap = None
        return self._read(conn, position)

    def advance(self, conn: Connection, position: int) -> None:
        conn.execute(update(sync_cursor_table).where(C.name == self.name)
                     .values(position=position))

    def _read(self, conn: Connection, position: int) -> list[Any]:
        return list(conn.execute(select(outbox_table).where(OB.seq > position)
                                 .order_by(OB.seq).limit(self.batch_size)))


def consumed_position(conn: Connection) -> int:
    """The last outbox sequence number every consumer has read (a missing cursor: 0)."""
    rows = dict(conn.execute(select(C.name, C.position).where(C.name.in_(CONSUMERS))).all())
    return min(int(rows.get(name) or 0) for name in CONSUMERS)


def prune_outbox(conn: Connection, before: float) -> int:
    """Drop outbox rows every consumer has read and that are older than ``before``: the
    router's events live in the subscription logs, and every version stays in
    ``resource_version``. Rows some consumer has not yet read are never touched."""
    position = consumed_position(conn)
    return conn.execute(delete(outbox_table).where(
        OB.seq <= position, OB.created_at < before)).rowcount


def _contiguous_run(rows: list[Any], position: int) -> list[Any]:
    """The leading rows that are exactly position+1, position+2, ... (up to a gap)."""
    for offset, row in enumerate(rows):
        if row.seq != position + offset + 1:
            return rows[:offset]
    return rows
