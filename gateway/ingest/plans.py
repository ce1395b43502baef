"""Case-management plans and care-team rosters received over HTTP or from files.

The same guarantees as the HL7 v2 feed, through the same inbound message store
(``inbox.py``, channels ``careplan`` and ``careteam``) and the same store writer: the raw
document, its resources and its status are committed in one transaction, the resources
inside a savepoint of their own, so nothing is half-written for one document and a document
that cannot be applied is still kept with its reason (``error``, replayable with ``replay``);
one that breaks its format is kept as ``rejected`` with the JSON pointer of the first fault.
The answer comes only after that commit, so an acknowledged document is durable. Documents
queued together (concurrent requests, a file import) share the transaction and its commit.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
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
from gateway.store.repository import Repository

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
        self.mappings_dir = mappings
        self.rules = PlanMappings.load(mappings)
        self.workflow = PlanWorkflow(service, base)
        self.writer = service.writer
        self.base = base

    def receive(self, raw: bytes, kind: str) -> PlanReply:
        """Store ``raw`` (a JSON plan or roster), then apply it; GatewayError when refused."""
        return answer(self.submit(raw, kind).result())

    def submit(self, raw: bytes, kind: str) -> Future[PlanReply | GatewayError]:
        """Map ``raw`` here (pure), then queue it on the store's writer, which stores and
        settles it in one transaction with the documents queued beside it, each in a
        savepoint of its own (group commit, ``store/writer.py``). The future resolves after
        that commit: to the reply, or to the error the document was kept with."""
        if kind not in KINDS:
            raise NotFound(f"Unknown document kind {kind!r}; one of {', '.join(KINDS)}.")
        return self.submit_mapped(raw, kind, self._map(raw, kind))

    def submit_mapped(self, raw: bytes, kind: str,
                      outcome: MappedDocument | _Failure) -> Future[PlanReply | GatewayError]:
        """``submit`` for a document mapped already (``map_document``, e.g. in a worker
        process of ``gateway import``)."""
        return self.writer.submit(
            lambda repo: self._store_and_settle(repo, raw, kind, outcome), self.base)

    def replay(self, message_id: int) -> PlanReply:
        """Process a stored plan or roster again (after a mapping fix)."""
        stored = self.inbox.get(message_id)
        if stored is None or stored.channel not in KINDS:
            raise NotFound(f"No stored plan or roster {message_id}.")
        if stored.status == ib.PROCESSED:
            raise Conflict(f"Stored {stored.channel} {message_id} was processed already.")
        outcome = self._map(stored.raw, stored.channel)
        return answer(self.writer.execute(
            lambda repo: self._claim_and_settle(repo, message_id, outcome), self.base))

    # -- writer jobs: one document each, in the shared transaction ------------------------

    def _store_and_settle(self, repo: Repository, raw: bytes, kind: str,
                          outcome: MappedDocument | _Failure) -> PlanReply | GatewayError:
        """The raw document is stored outside the savepoint that applies it, so a document
        that cannot be applied is kept with its reason while its resources are undone."""
        stored, _ = self.inbox.store_in(repo.conn, raw, channel=kind, sender=None,
                                        control_id=None, message_type=kind)
        return self._settle(repo, stored.id, outcome)

    def _claim_and_settle(self, repo: Repository, message_id: int,
                          outcome: MappedDocument | _Failure) -> PlanReply | GatewayError:
        current, due = self.inbox.claim(repo.conn, message_id, replay=True)
        if not due:
            return Conflict(f"Stored {current.channel} {message_id} was processed already.")
        return self._settle(repo, message_id, outcome)

    def _settle(self, repo: Repository, message_id: int,
                outcome: MappedDocument | _Failure) -> PlanReply | GatewayError:
        """Apply the mapped document, or record why it cannot be (``rejected`` when it
        breaks its format, ``error`` when it cannot be applied); never raises."""
        if isinstance(outcome, _Failure):
            return self._fail(repo, message_id, outcome.error, outcome.status)
        try:
            return self._apply_with_retry(repo, message_id, outcome)
        except GatewayError as error:
            return self._fail(repo, message_id, error, ib.ERROR)
        except Exception as error:  # kept with its reason, answered 500, never lost
            log.exception("stored %s %s failed", outcome.kind, message_id)
            failure = GatewayError(f"Internal error: {type(error).__name__}: {error}")
            return self._fail(repo, message_id, failure, ib.ERROR)

    def _apply_with_retry(self, repo: Repository, message_id: int,
                          mapped: MappedDocument) -> PlanReply:
        """Apply inside a savepoint; a failure undoes only this document's writes. A
        statement the database refused because another process created the same resources
        meanwhile (a unique id, a PostgreSQL deadlock) is tried again, and then finds them."""
        run = self.db.statements.execute
        for attempt in range(1, _ATTEMPTS + 1):
            run(repo.conn, "SAVEPOINT document", {})
            try:
                reply = self._apply(Repository(self.db, repo.conn, repo.base_url),
                                    message_id, mapped)
            except BaseException as error:
                run(repo.conn, "ROLLBACK TO SAVEPOINT document", {})
                run(repo.conn, "RELEASE SAVEPOINT document", {})
                if attempt == _ATTEMPTS or not isinstance(error, IntegrityError
                                                          | OperationalError):
                    raise
                log.info("stored %s %s: retrying after a conflict", mapped.kind, message_id)
                continue
            run(repo.conn, "RELEASE SAVEPOINT document", {})
            return reply
        raise AssertionError("unreachable")

    def _map(self, raw: bytes, kind: str) -> MappedDocument | _Failure:
        return map_document(self.rules, raw, kind)

    def _apply(self, repo: Repository, message_id: int, mapped: MappedDocument) -> PlanReply:
        """The document's writes on ``repo`` (a Repository of its own: deferred reference
        checks are made here, inside the savepoint) and its ``processed`` status."""
        result = self.workflow.apply(repo, mapped, source=source_uri(message_id))
        repo.check_deferred_references()
        written = [w.reference for w in result.resources]
        self.inbox.finish(repo.conn, message_id, status=ib.PROCESSED, ack_code="AA",
                          ack=f"{mapped.kind} {result.outcome}", resources=written,
                          visit=_key(mapped))
        return _reply(message_id, result)

    def _fail(self, repo: Repository, message_id: int, error: GatewayError,
              status: str) -> GatewayError:
        location = error.expression[0] if error.expression else None
        code = "AR" if status == ib.REJECTED else "AE"
        self.inbox.finish(repo.conn, message_id, status=status, ack_code=code,
                          ack=error.message, error=error.message[:2000], location=location)
        return error


def map_document(rules: PlanMappings, raw: bytes, kind: str) -> MappedDocument | _Failure:
    """The mapped document with its models checked, or why it is refused (pure: before the
    transaction, in any thread or process)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return _Failure(InvalidRequest(f"The body is not valid JSON: {error}",
                                       code="structure", expression=["/"]))
    try:
        if kind == CAREPLAN:
            return map_careplan(rules.careplan, document)
        return map_careteam(rules.careteam, document)
    except GatewayError as error:
        return _Failure(error)
    except Exception as error:  # a mapping bug: kept (replayable after the fix), a 500
        log.exception("mapping a %s failed", kind)
        return _Failure(GatewayError(f"Internal error: {type(error).__name__}: {error}"),
                        ib.ERROR)


@dataclass(frozen=True)
class _Failure:
    """Why a document cannot be applied, found before the transaction: one that breaks its
    format (or is not JSON) is stored ``rejected``."""

    error: GatewayError
    status: str = ib.REJECTED


def answer(settled: PlanReply | GatewayError) -> PlanReply:
    """The reply of a settled document; the error it was kept with is raised."""
    if isinstance(settled, GatewayError):
        raise settled
    return settled


def _key(mapped: MappedDocument) -> str:
    return f"{mapped.identifier['system']}|{mapped.identifier['value']}"[:512]


def _reply(message_id: int, result: PlanResult) -> PlanReply:
    return PlanReply(message_id, result.outcome,
                     [{"reference": w.reference, "status": w.status} for w in result.resources],
                     result.issues)


__all__ = ["CAREPLAN", "CARETEAM", "KINDS", "PlanIngest", "PlanReply",
           "SourceDocumentInvalid"]
