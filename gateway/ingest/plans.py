"""Case-management plans and care-team rosters received over HTTP or from files.

The same guarantees as the HL7 v2 feed, through the same inbound message store
(``inbox.py``, channels ``careplan`` and ``careteam``): the raw document is committed before
it is processed; its resources and its ``processed`` status are committed in one unit of
work, so nothing is half-written for one document; a document that cannot be applied is kept
with its reason (``error``, replayable with ``replay``) and one that breaks its format is kept
as ``rejected`` with the JSON pointer of the first fault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.coordination.plans import CREATED, PlanResult, PlanWorkflow
from gateway.errors import Conflict, GatewayError, InvalidRequest, NotFound
from gateway.ingest import inbox as ib
from gateway.ingest.inbox import source_uri
from gateway.mapping.careplan import map_careplan
from gateway.mapping.careteam import map_careteam
from gateway.mapping.issues import MappingIssue
from gateway.mapping.plancommon import MappedDocument
from gateway.mapping.planrules import PlanMappings
from gateway.mapping.planschema import SourceDocumentInvalid
from gateway.rest.interactions import FhirService
from gateway.store.db import Database
from gateway.store.uow import UnitOfWork

CAREPLAN, CARETEAM = "careplan", "careteam"
_ATTEMPTS = 3
log = logging.getLogger("gateway.ingest.plans")
KINDS = (CAREPLAN, CARETEAM)


@dataclass
class PlanReply:
    """The answer for one document: its stored message id and what it did."""

    message_id: int
    outcome: str
    resources: list[dict[str, str]] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.outcome == CREATED

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message_id, "outcome": self.outcome,
                "resources": self.resources,
                "issue": [{"severity": i.severity, "code": "code-invalid",
                           "diagnostics": f"{i.location}: {i.message}",
                           "expression": [i.location]} for i in self.issues]}


class PlanIngest:
    """Store, map, apply and answer plans and rosters."""

    def __init__(self, db: Database, service: FhirService, mappings: Path,
                 base: str = "") -> None:
        self.db = db
        self.inbox = ib.Inbox(db)
        self.rules = PlanMappings.load(mappings)
        self.workflow = PlanWorkflow(service, base)
        self.base = base

    def receive(self, raw: bytes, kind: str) -> PlanReply:
        """Store ``raw`` (a JSON plan or roster), then apply it; GatewayError when refused."""
        if kind not in KINDS:
            raise NotFound(f"Unknown document kind {kind!r}; one of {', '.join(KINDS)}.")
        stored, _ = self.inbox.store(raw, channel=kind, message_type=kind)
        return self.process(stored.id, raw, kind)

    def replay(self, message_id: int) -> PlanReply:
        """Process a stored plan or roster again (after a mapping fix)."""
        stored = self.inbox.get(message_id)
        if stored is None or stored.channel not in KINDS:
            raise NotFound(f"No stored plan or roster {message_id}.")
        if stored.status == ib.PROCESSED:
            raise Conflict(f"Stored {stored.channel} {message_id} was processed already.")
        return self.process(message_id, stored.raw, stored.channel)

    def process(self, message_id: int, raw: bytes, kind: str) -> PlanReply:
        try:
            mapped = self._map(raw, kind)
        except GatewayError as error:
            self._fail(message_id, error, ib.REJECTED)
            raise
        try:
            return self._apply_with_retry(message_id, mapped)
        except GatewayError as error:
            self._fail(message_id, error, ib.ERROR)
            raise
        except Exception as error:  # kept with its reason, answered 500, never lost
            log.exception("stored %s %s failed", mapped.kind, message_id)
            failure = GatewayError(f"Internal error: {type(error).__name__}: {error}")
            self._fail(message_id, failure, ib.ERROR)
            raise failure from None

    def _apply_with_retry(self, message_id: int, mapped: MappedDocument) -> PlanReply:
        """Apply; a transaction the database refused because another document created the
        same resources meanwhile (a unique id, a PostgreSQL deadlock) is tried again, and
        then finds them."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._apply(message_id, mapped)
            except (IntegrityError, OperationalError):
                if attempt == _ATTEMPTS:
                    raise
                log.info("stored %s %s: retrying after a conflict", mapped.kind, message_id)
        raise AssertionError("unreachable")

    def _map(self, raw: bytes, kind: str) -> MappedDocument:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise InvalidRequest(f"The body is not valid JSON: {error}", code="structure",
                                 expression=["/"]) from None
        if kind == CAREPLAN:
            return map_careplan(self.rules.careplan, document)
        return map_careteam(self.rules.careteam, document)

    def _apply(self, message_id: int, mapped: MappedDocument) -> PlanReply:
        with UnitOfWork(self.db, self.base) as uow:
            result = self.workflow.apply(uow.repository, mapped, source=source_uri(message_id))
            written = [w.reference for w in result.resources]
            self.inbox.finish(uow.repository.conn, message_id, status=ib.PROCESSED,
                              ack_code="AA", ack=f"{mapped.kind} {result.outcome}",
                              resources=written, visit=_key(mapped))
            uow.commit()
        return _reply(message_id, result)

    def _fail(self, message_id: int, error: GatewayError, status: str) -> None:
        location = error.expression[0] if error.expression else None
        code = "AR" if status == ib.REJECTED else "AE"
        self.inbox.finish_now(message_id, status=status, ack_code=code, ack=error.message,
                              error=error.message[:2000], location=location)


def _key(mapped: MappedDocument) -> str:
    return f"{mapped.identifier['system']}|{mapped.identifier['value']}"[:512]


def _reply(message_id: int, result: PlanResult) -> PlanReply:
    return PlanReply(message_id, result.outcome,
                     [{"reference": w.reference, "status": w.status} for w in result.resources],
                     result.issues)


__all__ = ["CAREPLAN", "CARETEAM", "KINDS", "PlanIngest", "PlanReply",
           "SourceDocumentInvalid"]
