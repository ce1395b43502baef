"""The inbound message store: every message is stored raw, before it is processed or in the
transaction that processes it (outside the savepoint of its writes).

Statuses: ``received`` -> ``processed`` | ``error`` (AE, replayable) | ``rejected`` (AR).
(sender, control_id) is unique, so a message sent twice is found again and acknowledged
with the stored ACK instead of being applied twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.tables import inbound_table

M = inbound_table.c
RECEIVED, PROCESSED, ERROR, REJECTED = "received", "processed", "error", "rejected"
STATUSES = (RECEIVED, PROCESSED, ERROR, REJECTED)

# The per-message statements of the ingest transaction, prebuilt (store/statements.py).
_COLUMNS = ("channel", "sender", "facility", "control_id", "message_type", "version",
            "event_time", "received_at", "status", "raw")
_INSERT_NEW = (
    f"INSERT INTO inbound_message ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (sender, control_id) DO NOTHING RETURNING id")
_NAMES = tuple(c.name for c in inbound_table.columns)
_SELECT = f"SELECT {', '.join(_NAMES)} FROM inbound_message"
_BY_SENDER = _SELECT + " WHERE sender = :sender AND control_id = :control_id"
_FINISH = (
    "UPDATE inbound_message SET status = :status, ack_code = :ack_code, ack = :ack, "
    "error = :error, error_location = :error_location, processed_at = :processed_at, "
    "resources = :resources, visit = COALESCE(:visit, visit), "
    "event_time = COALESCE(:event_time, event_time) WHERE id = :id")
_NEWER_APPLIED = (
    "SELECT id FROM inbound_message WHERE visit = :visit AND status = :status "
    "AND event_time > :event_time AND id != :id LIMIT 1")


def source_uri(message_id: int) -> str:
    """meta.source of every resource version written from a stored message."""
    return f"urn:gateway:inbound-message:{message_id}"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    channel: str
    sender: str | None
    control_id: str | None
    message_type: str | None
    status: str
    ack_code: str | None
    ack: str | None
    error: str | None
    error_location: str | None
    received_at: float
    processed_at: float | None
    event_time: float | None
    visit: str | None
    resources: list[str]
    raw: bytes

    def summary(self) -> dict[str, Any]:
        """The row without its raw body, for listings."""
        return {"id": self.id, "channel": self.channel, "sender": self.sender,
                "controlId": self.control_id, "messageType": self.message_type,
                "status": self.status, "ackCode": self.ack_code, "error": self.error,
                "errorLocation": self.error_location, "receivedAt": self.received_at,
                "processedAt": self.processed_at, "eventTime": self.event_time,
                "visit": self.visit, "resources": self.resources}


def _stored(row: Any) -> StoredMessage:
    return StoredMessage(row.id, row.channel, row.sender, row.control_id, row.message_type,
                         row.status, row.ack_code, row.ack, row.error, row.error_location,
                         row.received_at, row.processed_at, row.event_time, row.visit,
                         orjson.loads(row.resources) if row.resources else [], row.raw)


def _stored_tuple(row: Any) -> StoredMessage:
    """``_stored`` for a DB-API row of ``_SELECT`` (columns in table order)."""
    return _stored(SimpleNamespace(**dict(zip(_NAMES, row, strict=True))))


class Inbox:
    """Reads and writes of ``inbound_message``; each store call commits on its own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, raw: bytes, *, channel: str, sender: str | None = None,
              control_id: str | None = None, facility: str | None = None,
              message_type: str | None = None, version: str | None = None,
              event_time: float | None = None) -> tuple[StoredMessage, bool]:
        """Commit the raw message as ``received``; (existing row, False) when the same
        (sender, control id) was stored before."""
        values = {"channel": channel, "sender": _text(sender), "control_id": _text(control_id),
                  "facility": _text(facility), "message_type": _text(message_type),
                  "version": _text(version),
                  "event_time": event_time, "received_at": time.time(), "status": RECEIVED,
                  "raw": raw}
        try:
            with self.db.write() as connection:
                new_id = connection.execute(insert(inbound_table).values(**values)) \
                    .inserted_primary_key[0]
        except IntegrityError:
            existing = self.find(sender, control_id)
            if existing is None:
                raise
            return existing, False
        return StoredMessage(int(new_id), channel, sender, control_id, message_type, RECEIVED,
                             None, None, None, None, values["received_at"], None,
                             event_time, None, [], raw), True

    def store_in(self, connection: Connection, raw: bytes, *, channel: str,
                 sender: str | None, control_id: str | None, facility: str | None = None,
                 message_type: str | None = None, version: str | None = None,
                 event_time: float | None = None) -> tuple[StoredMessage, bool]:
        """``store`` inside the caller's transaction, which then records the outcome too:
        (row, True) when new, (the earlier row, False) when the same (sender, control id)
        was stored before. The insert does nothing on a duplicate, so the transaction
        stays usable (PostgreSQL aborts one on a failed insert)."""
        values = {"channel": channel, "sender": _text(sender), "control_id": _text(control_id),
                  "facility": _text(facility), "message_type": _text(message_type),
                  "version": _text(version), "event_time": event_time,
                  "received_at": time.time(), "status": RECEIVED, "raw": raw}
        run = self.db.statements.execute
        inserted = run(connection, _INSERT_NEW, values)
        if inserted:
            return StoredMessage(int(inserted[0][0]), channel, values["sender"],
                                 values["control_id"], values["message_type"], RECEIVED,
                                 None, None, None, None, values["received_at"], None,
                                 event_time, None, [], raw), True
        lock = "" if self.db.is_sqlite else " FOR UPDATE"
        rows = run(connection, _BY_SENDER + lock,
                   {"sender": values["sender"], "control_id": values["control_id"]})
        return _stored_tuple(rows[0]), False

    def store_rejected(self, raw: bytes, *, channel: str, error: str, location: str,
                       ack: str) -> StoredMessage:
        """Keep an unparseable message with its reason (no sender/control id: not deduped)."""
        now = time.time()
        with self.db.write() as connection:
            new_id = connection.execute(insert(inbound_table).values(
                channel=channel, received_at=now, processed_at=now, status=REJECTED,
                ack_code="AR", ack=_text(ack), error=_text(error),
                error_location=_text(location), raw=raw,
            )).inserted_primary_key[0]
        found = self.get(int(new_id))
        assert found is not None
        return found

    def get(self, message_id: int, connection: Connection | None = None,
            *, lock: bool = False) -> StoredMessage | None:
        statement = select(inbound_table).where(M.id == message_id)
        if lock and not self.db.is_sqlite:
            statement = statement.with_for_update()
        if connection is not None:
            row = connection.execute(statement).first()
        else:
            with self.db.engine.connect() as own:
                row = own.execute(statement).first()
        return _stored(row) if row is not None else None

    def claim(self, connection: Connection, message_id: int, *,
              replay: bool) -> tuple[StoredMessage, bool]:
        """Lock the message in the processing transaction; (row, True) when it is to be
        processed now, (row, False) when it is settled: processed already, or failed and
        this is not an explicit replay (a concurrent resend must not apply it twice)."""
        current = self.get(message_id, connection, lock=True)
        assert current is not None
        settled = current.status == PROCESSED or (current.status != RECEIVED and not replay)
        return current, not settled

    def find(self, sender: str | None, control_id: str | None) -> StoredMessage | None:
        with self.db.engine.connect() as connection:
            row = connection.execute(select(inbound_table).where(
                M.sender == sender, M.control_id == control_id)).first()
        return _stored(row) if row is not None else None

    def list(self, status: str | None = None, limit: int = 100,
             after: int = 0) -> list[StoredMessage]:
        statement = select(inbound_table).where(M.id > after).order_by(M.id).limit(limit)
        if status:
            statement = statement.where(M.status == status)
        with self.db.engine.connect() as connection:
            return [_stored(r) for r in connection.execute(statement)]

    def finish(self, connection: Connection, message_id: int, *, status: str, ack_code: str,
               ack: str, error: str | None = None, location: str | None = None,
               resources: list[str] | None = None, visit: str | None = None,
               event_time: float | None = None) -> None:
        """Record the outcome, on the caller's connection (the processing transaction)."""
        self.db.statements.execute(connection, _FINISH, {
            "status": status, "ack_code": ack_code, "ack": _text(ack), "error": _text(error),
            "error_location": _text(location), "processed_at": time.time(),
            "resources": orjson.dumps(resources).decode() if resources else None,
            "visit": _text(visit), "event_time": event_time, "id": message_id})

    def finish_now(self, message_id: int, **values: Any) -> None:
        with self.db.write() as connection:
            self.finish(connection, message_id, **values)

    def newer_applied(self, connection: Connection, visit: str, event_time: float | None,
                      message_id: int) -> bool:
        """Has a message about ``visit`` with a later event time been applied already?"""
        if event_time is None:
            return False
        return bool(self.db.statements.execute(connection, _NEWER_APPLIED, {
            "visit": visit, "status": PROCESSED, "event_time": event_time, "id": message_id}))

    def applied_for_visit(self, connection: Connection, visit: str) -> list[StoredMessage]:
        rows = connection.execute(select(inbound_table).where(
            M.visit == visit, M.status == PROCESSED).order_by(M.event_time, M.id))
        return [_stored(r) for r in rows]


def _text(value: str | None) -> str | None:
    """A text column's value without NUL characters, which PostgreSQL text cannot hold (an
    error message may quote the bad input; the raw bytes keep it exactly)."""
    return value.replace("\x00", "") if value else value
