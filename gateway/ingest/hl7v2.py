"""HL7 v2 ingest: store raw, map, apply, record the outcome, acknowledge.

The order is the guarantee: a message is stored raw, its resources written and its status
recorded in one transaction, and only after that commits is the ACK built and returned, so an
acknowledged message is never lost. The raw row is written outside the savepoint that applies
the message: a message that cannot be mapped or applied is still kept (``error``, with its
AE) while the savepoint's writes are undone.

Parsing and mapping are pure and run in the caller's thread; the database work runs on the
store's writer (``store/writer.py``), which puts the messages arriving together into one
transaction, each in a savepoint of its own, and commits once (group commit): on SQLite a
commit costs more than the SQL of a message.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gateway.coordination.adt import AdtWorkflow
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.ingest import inbox as ib
from gateway.ingest.ack import AckError, InboundMsh, ack_wanted, build_ack
from gateway.ingest.inbox import source_uri
from gateway.mapping.adt import MappedAdt, map_adt
from gateway.mapping.header import Header, read_header
from gateway.mapping.issues import MappingError, MessageRejected
from gateway.mapping.rules import MappingSet
from gateway.mapping.v2message import V2Message
from gateway.rest.interactions import FhirService
from gateway.store.db import Database
from gateway.store.repository import Repository

log = logging.getLogger("gateway.ingest")


@dataclass(frozen=True)
class Reply:
    """The outcome of one message: its ACK (None when enhanced mode asked for none)."""

    code: str
    ack: str | None
    message_id: int | None


_CHARSETS = {"8859/1": "latin-1", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8",
             "ASCII": "ascii", "UNICODE": "utf-8"}


def decode(raw: bytes) -> str:
    """ER7 text in the character set MSH-18 names (HL7 table 0211: ASCII, 8859/1,
    UNICODE UTF-8...); without MSH-18, UTF-8 when the bytes are, else ISO 8859-1."""
    charset = _CHARSETS.get(_msh18(raw))
    for encoding in ([charset] if charset else []) + ["utf-8"]:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _msh18(raw: bytes) -> str:
    """MSH-18 read from the raw bytes (the MSH line is ASCII before it is decoded)."""
    line = raw.lstrip(b"\x0b\r\n ").split(b"\r", 1)[0].split(b"\n", 1)[0]
    if not line.startswith(b"MSH") or len(line) < 4:
        return ""
    fields = line.split(line[3:4])
    if len(fields) < 18:
        return ""
    return fields[17].split(b"^", 1)[0].decode("ascii", "replace").strip().upper()


class Hl7v2Ingest:
    """Receive, process, replay and recover HL7 v2 messages against one database."""

    def __init__(self, db: Database, service: FhirService, mappings_dir: Path,
                 base: str = "") -> None:
        self.db = db
        self.inbox = ib.Inbox(db)
        self.mappings_dir = mappings_dir
        self.mappings = MappingSet.load(mappings_dir)
        self.workflow = AdtWorkflow(service, base)
        self.writer = service.writer
        self.base = base

    def reload_mappings(self) -> None:
        self.mappings = MappingSet.load(self.mappings_dir)

    # -- entry points ----------------------------------------------------------------------

    def receive(self, raw: bytes, channel: str, *, truncated: bool = False) -> Reply:
        """Store, process and acknowledge one message; never raises for bad input."""
        text = decode(raw)
        try:
            if truncated:
                raise MessageRejected("The MLLP frame was cut short (no end block).",
                                      location="MSH", hl7_error_code="100")
            if "\x00" in text:
                raise MessageRejected("The message contains a NUL character, which no HL7 v2 "
                                      "data type allows.", location=_nul_segment(text),
                                      hl7_error_code="102")
            message = V2Message.parse(text)
            header = read_header(message, self.mappings)
            if not header.control_id:
                raise MessageRejected("MSH-10 (message control id) is required.",
                                      location="MSH-10", hl7_error_code="101")
        except MessageRejected as error:
            return self._reject(raw, text, channel, error)
        arrival = _Arrival(raw, channel, header, InboundMsh.from_text(message.text))
        outcome = self._map(message.text, message, header)
        return self.writer.execute(lambda repo: self._store_and_settle(repo, arrival, outcome),
                                   self.base)

    def replay(self, message_id: int) -> Reply:
        """Process a failed (or never processed) message again, with the current mappings."""
        stored = self.inbox.get(message_id)
        if stored is None:
            raise NotFound(f"Inbound message {message_id} is not known.")
        if stored.status == ib.PROCESSED:
            raise Conflict(f"Inbound message {message_id} was processed already.")
        self.reload_mappings()
        return self.process(message_id, replay=True)

    # -- processing ------------------------------------------------------------------------

    def process(self, message_id: int, *, replay: bool = False) -> Reply:
        """Process a stored message (replay, or recovery of one left ``received``)."""
        stored = self.inbox.get(message_id)
        assert stored is not None
        text = decode(stored.raw)
        msh = InboundMsh.from_text(text)
        outcome = self._map(text)
        return self.writer.execute(
            lambda repo: self._claim_and_settle(repo, message_id, msh, outcome, replay),
            self.base)

    def _map(self, text: str, message: V2Message | None = None,
             header: Header | None = None) -> MappedAdt | _Failure:
        """The mapped message, or why it cannot be applied (pure: before the transaction)."""
        try:
            return map_adt(message or V2Message.parse(text), self.mappings, header)
        except Exception as error:
            return _failure(error)

    def _store_and_settle(self, repo: Repository, arrival: _Arrival,
                          outcome: MappedAdt | _Failure) -> Reply:
        """Writer job: store the raw message, then settle it; a re-sent message (same sender
        and MSH-10) settled before gets the ACK it got then and changes nothing."""
        header = arrival.header
        stored, new = self.inbox.store_in(
            repo.conn, arrival.raw, channel=arrival.channel, sender=header.sender,
            control_id=header.control_id, facility=header.sending_facility,
            message_type=header.message_type, version=header.version,
            event_time=header.event_time.epoch if header.event_time else None)
        if not new and stored.status != ib.RECEIVED:
            return self._stored_reply(stored, arrival.msh)
        return self._settle(repo, stored.id, arrival.msh, outcome, replay=False)

    def _claim_and_settle(self, repo: Repository, message_id: int, msh: InboundMsh,
                          outcome: MappedAdt | _Failure, replay: bool) -> Reply:
        current, due = self.inbox.claim(repo.conn, message_id, replay=replay)
        if not due:
            return self._stored_reply(current, msh)
        return self._settle(repo, message_id, msh, outcome, replay=replay)

    def _settle(self, repo: Repository, message_id: int, msh: InboundMsh,
                outcome: MappedAdt | _Failure, *, replay: bool) -> Reply:
        """Apply the mapped message, or record why it cannot be: AE/AR with ERR."""
        if isinstance(outcome, _Failure):
            return self._fail(repo, message_id, msh, outcome)
        try:
            return self._apply_with_retry(repo, message_id, msh, outcome, replay)
        except Exception as error:  # a bug must not take the listener down
            return self._fail(repo, message_id, msh, _failure(error, message_id))

    def _apply_with_retry(self, repo: Repository, message_id: int, msh: InboundMsh,
                          mapped: MappedAdt, replay: bool) -> Reply:
        """Apply inside a savepoint; a failure undoes only this message's writes. A
        statement the database aborted (a PostgreSQL deadlock between two processes creating
        the same new resources in another order) is tried again."""
        run = self.db.statements.execute
        for attempt in range(1, _ATTEMPTS + 1):
            run(repo.conn, "SAVEPOINT message", {})
            try:
                reply = self._apply(repo, message_id, msh, mapped, replay)
            except BaseException as error:
                run(repo.conn, "ROLLBACK TO SAVEPOINT message", {})
                run(repo.conn, "RELEASE SAVEPOINT message", {})
                if attempt == _ATTEMPTS or not _retryable(error):
                    raise
                log.info("inbound message %s: retrying after %s", message_id, error)
                continue
            run(repo.conn, "RELEASE SAVEPOINT message", {})
            return reply
        raise AssertionError("unreachable")

    def _apply(self, repo: Repository, message_id: int, msh: InboundMsh, mapped: MappedAdt,
               replay: bool) -> Reply:
        epoch = mapped.header.event_time.epoch if mapped.header.event_time else None
        visit = mapped.visit_key
        connection = repo.conn
        history = None
        if visit:
            self._lock_visit(repo, visit)
            if self.inbox.newer_applied(connection, visit, epoch, message_id):
                history = self._history(connection, visit, mapped, message_id, epoch)
        result = self.workflow.apply(repo, mapped, source=source_uri(message_id),
                                     history=history)
        warnings = [AckError(i.location, i.message, "103", "W") for i in result.issues]
        ack = build_ack(msh, "AA", _control_id(), errors=warnings)
        self.inbox.finish(connection, message_id, status=ib.PROCESSED, ack_code="AA",
                          ack=ack, resources=result.resources, visit=visit,
                          event_time=epoch,
                          error="; ".join(i.message for i in result.issues) or None)
        return Reply("AA", ack if ack_wanted(msh, "AA") else None, message_id)

    def _history(self, connection: Connection, visit: str, mapped: MappedAdt,
                 message_id: int, epoch: float | None) -> list[tuple[MappedAdt, str]]:
        """The visit's applied messages plus this one, in event-time order (ties: arrival)."""
        entries = [(epoch or 0.0, message_id, mapped)]
        for row in self.inbox.applied_for_visit(connection, visit):
            if row.id != message_id:
                earlier = map_adt(V2Message.parse(decode(row.raw)), self.mappings)
                entries.append((row.event_time or 0.0, row.id, earlier))
        entries.sort(key=lambda e: (e[0], e[1]))
        return [(m, source_uri(i)) for _, i, m in entries]

    def _lock_visit(self, repo: Repository, visit: str) -> None:
        """Serialize messages about one visit (PostgreSQL; SQLite holds the write lock)."""
        if self.db.is_sqlite:
            return
        key = int.from_bytes(hashlib.sha256(f"visit:{visit}".encode()).digest()[:8], "big",
                             signed=True)
        self.db.statements.execute(repo.conn, "SELECT pg_advisory_xact_lock(:key)",
                                   {"key": key})

    # -- replies ---------------------------------------------------------------------------

    def _fail(self, repo: Repository, message_id: int, msh: InboundMsh,
              failure: _Failure) -> Reply:
        ack_code = "AR" if failure.status == ib.REJECTED else "AE"
        message = failure.error.message
        ack = build_ack(msh, ack_code, _control_id(), text=message,
                        errors=[AckError(failure.location, message, failure.code)])
        self.inbox.finish(repo.conn, message_id, status=failure.status, ack_code=ack_code,
                          ack=ack, error=message, location=failure.location or None)
        return Reply(ack_code, ack if ack_wanted(msh, ack_code) else None, message_id)

    def _reject(self, raw: bytes, text: str, channel: str, error: MessageRejected) -> Reply:
        # The ACK echoes MSH fields; a NUL among them must not reach it (the raw bytes keep it).
        msh = InboundMsh.from_text(text.replace("\x00", ""))
        ack = build_ack(msh, "AR", _control_id(), text=error.message,
                        errors=[AckError(error.location, error.message, error.hl7_error_code)])
        stored = self.inbox.store_rejected(raw, channel=channel, error=error.message,
                                           location=error.location, ack=ack)
        return Reply("AR", ack, stored.id)

    @staticmethod
    def _stored_reply(stored: ib.StoredMessage, msh: InboundMsh) -> Reply:
        """A message seen before is answered with the ACK it got then."""
        code = stored.ack_code or "AE"
        return Reply(code, stored.ack if ack_wanted(msh, code) else None, stored.id)


_ATTEMPTS = 3


@dataclass(frozen=True)
class _Arrival:
    """A parsed message as received, before it is stored."""

    raw: bytes
    channel: str
    header: Header
    msh: InboundMsh


@dataclass(frozen=True)
class _Failure:
    """Why a stored message is not applied: its status, the error and the ERR it earns."""

    status: str
    error: GatewayError
    location: str
    code: str


def _failure(error: Exception, message_id: int | None = None) -> _Failure:
    """The stored status and ERR for an error: AR for a refused message, AE otherwise."""
    if isinstance(error, MessageRejected):
        return _Failure(ib.REJECTED, error, error.location, error.hl7_error_code)
    if isinstance(error, MappingError):
        return _Failure(ib.ERROR, error, error.location, error.hl7_error_code)
    if isinstance(error, GatewayError):
        return _Failure(ib.ERROR, error, error.expression[0] if error.expression else "", "207")
    log.exception("inbound message %s failed", message_id, exc_info=error)
    internal = GatewayError(f"Internal error: {type(error).__name__}: {error}")
    return _Failure(ib.ERROR, internal, "", "207")


def _nul_segment(text: str) -> str:
    """The id of the first segment holding a NUL (ERR-2 names where the fault is)."""
    for segment in text.replace("\n", "\r").split("\r"):
        if "\x00" in segment:
            name = segment[:3].replace("\x00", "")
            return name if name.isalnum() else "MSH"
    return "MSH"


def _retryable(error: BaseException) -> bool:
    """Deadlock (40P01), serialization failure (40001) or a busy SQLite database."""
    orig = error.orig if isinstance(error, DBAPIError) else error  # or a DB-API error itself
    code = getattr(orig, "sqlstate", None)
    return code in ("40P01", "40001") or (isinstance(orig, sqlite3.OperationalError)
                                          and "database is locked" in str(orig))


def _control_id() -> str:
    return uuid.uuid4().hex[:20]
