"""The audit trail: every access by a client or a person becomes a FHIR AuditEvent.

Records are collected in memory and written in batches through the writer's group commit
(store/writer.py): one writer job stores every record waiting at that moment, each as an
AuditEvent created by the Repository, so a read costs an append to a list, not a
transaction. A batch that fails is put back and retried; records that still cannot be
written are logged at ERROR with their count and kept in ``failed`` (audit writes never fail
silently). ``drain`` waits until everything recorded so far is durable.

Deliveries (sync/delivery_audit.py) are recorded in the transaction that records the
attempt, as DICOM 110106 Export events naming the Subscription as the agent and its
endpoint as the agent's network address.

The events follow R4 auditevent.html and the "RESTful Operation" type of the Basic Audit
Log Patterns IG: ``type`` rest (or DICOM 110114 User Authentication for token requests),
``subtype`` the FHIR interaction, ``action`` C/R/U/D/E, ``outcome`` 0/4/8, the client as
``agent.who.identifier`` and ``agent.altId``, the resource and its patient as ``entity``.
AuditEvents are built here and stored without a model round-trip (their shape is checked
against fhir.resources R4B in the tests); they refer to what was accessed even when it is
gone or never existed, so they carry no referential-integrity check.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.store import query
from gateway.store.clients import CLIENT_SYSTEM
from gateway.store.indexer import index_rows
from gateway.store.prepare import Prepared
from gateway.store.repository import Repository
from gateway.store.writer import Writer

log = logging.getLogger("gateway.audit")

_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "RESTful Operation"}
_LOGIN = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114",
          "display": "User Authentication"}
_ACTIONS = {"create": "C", "read": "R", "vread": "R", "history": "R", "search": "E",
            "update": "U", "delete": "D", "transaction": "E", "batch": "E",
            "operation": "E", "login": "E", "logout": "E", "ingest": "C", "delivery": "R"}
_LOGOUT = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110123",
           "display": "Logout"}
_EXPORT = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106",
           "display": "Export"}
_INTERACTIONS = {"read", "vread", "update", "patch", "delete", "history", "create",
                 "search", "capabilities", "transaction", "batch", "operation"}


@dataclass
class Access:
    """One access to record."""

    client_id: str  # the client, or the person's user name
    interaction: str
    status: int
    resource_type: str | None = None
    resource_id: str | None = None
    query: str | None = None
    patient: str | None = None
    address: str | None = None
    detail: str | None = None
    recorded: float = 0.0
    agent_system: str = CLIENT_SYSTEM  # a client, or a person (store.users.USER_SYSTEM)

    def __post_init__(self) -> None:
        self.recorded = self.recorded or time.time()


def outcome_code(status: int) -> str:
    """AuditEvent.outcome (R4 valueset-audit-event-outcome): 0 success, 4 minor failure
    (refused: 4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def build_event(access: Access, patient: str | None) -> dict[str, Any]:
    """The AuditEvent for one access."""
    login = access.interaction in ("login", "logout")
    kind = _LOGIN if login else _EXPORT if access.interaction == "delivery" else _REST
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": kind,
        "action": _ACTIONS.get(access.interaction, "E"),
        "recorded": datetime.fromtimestamp(access.recorded, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome_code(access.status),
        "outcomeDesc": f"HTTP {access.status}" + (f": {access.detail}" if access.detail
                                                   else ""),
        "agent": [_agent(access)],
        "source": {"observer": {"display": "fhir-care-gateway"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "security-source-type", "code": "4"}]},
    }
    if access.interaction in _INTERACTIONS:
        event["subtype"] = [{"system": "http://hl7.org/fhir/restful-interaction",
                             "code": access.interaction}]
    if access.interaction == "logout":
        event["subtype"] = [_LOGOUT]
    entities = _entities(access, patient)
    if entities:
        event["entity"] = entities
    return event


def _agent(access: Access) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": access.agent_system, "value": access.client_id}},
        "altId": access.client_id, "requestor": True}
    if access.address:  # an IP address, or (a delivery's destination) a URL
        kind = "5" if "://" in access.address else "2"
        agent["network"] = {"address": access.address, "type": kind}
    return agent


def _entities(access: Access, patient: str | None) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if access.resource_type and access.resource_id:
        entities.append({"what": {"reference": f"{access.resource_type}/{access.resource_id}"},
                         "type": _entity_type("2", "System Object")})
    elif access.resource_type or access.query:
        entity: dict[str, Any] = {"type": _entity_type("2", "System Object")}
        if access.resource_type:
            entity["name"] = access.resource_type
        if access.query:
            entity["query"] = base64.b64encode(access.query.encode()).decode()
        entities.append(entity)
    if patient and patient != f"{access.resource_type}/{access.resource_id}":
        entities.append({"what": {"reference": patient},
                         "type": _entity_type("1", "Person"),
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/"
                                            "object-role", "code": "1", "display": "Patient"}})
    return entities


def _entity_type(code: str, display: str) -> dict[str, str]:
    return {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": code, "display": display}


class AuditTrail:
    """Collects accesses and stores them as AuditEvents in batched writer jobs."""

    def __init__(self, writer: Writer, *, max_batch: int = 500) -> None:
        self.writer = writer
        self.max_batch = max_batch
        self.failed = 0
        self._pending: list[tuple[Access, int]] = []
        self._lock = threading.Lock()
        self._scheduled: Future[int] | None = None
        self._taken: list[tuple[Access, int]] = []

    def record(self, access: Access) -> None:
        """Queue one access; it is stored with the next batch (within milliseconds)."""
        with self._lock:
            self._pending.append((access, 0))
            if self._scheduled is None:
                self._schedule()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every access recorded so far is stored (or has failed, logged)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                scheduled = self._scheduled
                if scheduled is None and not self._pending:
                    return
            if scheduled is not None:
                scheduled.exception(timeout=max(0.0, deadline - time.monotonic()))
            else:
                time.sleep(0.01)
        raise TimeoutError("audit records were not stored in time")

    def _schedule(self) -> None:
        future = self.writer.submit(self._store)
        self._scheduled = future
        future.add_done_callback(self._stored)

    def _store(self, repo: Repository) -> int:
        with self._lock:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            self._taken = batch
        for access, _attempt in batch:
            store_event(repo, access)
        return len(batch)

    def _stored(self, future: Future[int]) -> None:
        error = future.exception()
        with self._lock:
            if error is not None:
                retry = [(a, n + 1) for a, n in self._taken if n < 2]
                lost = len(self._taken) - len(retry)
                log.error("audit write failed (%s); %d records queued again, %d lost",
                          error, len(retry), lost)
                self.failed += lost
                self._pending[:0] = retry
            self._taken = []
            self._scheduled = None
            if self._pending:
                self._schedule()


def store_event(repo: Repository, access: Access) -> None:
    """Write the AuditEvent for ``access`` in the repository's transaction."""
    event = build_event(access, access.patient or _patient_of(repo, access))
    prepared = Prepared(event, [], index_rows("AuditEvent", event, repo.base_url),
                        repo.base_url)
    repo.create(event, prepared=prepared)


def _patient_of(repo: Repository, access: Access) -> str | None:
    """The patient the accessed resource belongs to (``resource.patient``)."""
    if not (access.resource_type and access.resource_id):
        return None
    rows = query.execute(repo.conn, "SELECT patient FROM resource WHERE type = ? AND id = ?",
                         [access.resource_type, access.resource_id])
    return rows[0][0] if rows else None
