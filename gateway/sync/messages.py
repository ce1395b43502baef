"""Da Vinci Unsolicited Notification message Bundles for Endpoints of format
``davinci-message`` (HL7 Da Vinci Alerts IG STU1.1, guidance.html "The Da Vinci Notification
Message Bundle"; R4 messaging.html).

A ``message`` Bundle whose first entry is a MessageHeader with ``eventCoding`` from the
notification-event code system (the vocabulary the gateway reads inbound,
mapping/davinci.py): ``notification-admit``, ``-discharge`` or ``-transfer``, chosen by the
transition the change is (topics.py); ``focus`` is the Encounter, bundled with the Patient,
Practitioners, Locations and Organization it references. POSTed to
``[Endpoint.address]/$process-message``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.fhir.references import parse_reference
from gateway.mapping.davinci import EVENT_SYSTEM
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.sync import registry, remote
from gateway.sync.backport import instant
from gateway.sync.careteam import transition
from gateway.sync.notifications import FHIR_JSON, Outgoing, evidence
from gateway.sync.queue import Job

EVENT_CODES = {"encounter-admitted": "notification-admit",
               "encounter-discharged": "notification-discharge",
               "encounter-transferred": "notification-transfer"}


def request(db: Database, job: Job, base: str, system: str, secrets: list[str]) -> Outgoing:
    """The POST of one notification message (database reads: run it in a thread)."""
    bundle = message(db, job, base, system)
    body = orjson.dumps(bundle)
    headers = dict(job.headers)
    headers["Content-Type"] = FHIR_JSON
    headers.update(evidence(job, body, secrets))
    address = job.endpoint.rstrip("/")
    url = address if address.endswith("/$process-message") else address + "/$process-message"
    return Outgoing("POST", url, body, headers)


def message(db: Database, job: Job, base: str, system: str) -> dict[str, Any]:
    assert job.body is not None and job.resource_id and job.version_id
    encounter = orjson.loads(job.body)
    with db.engine.connect() as conn:
        repo = Repository(db, conn, base)
        rid = int(repo.current_row("Encounter", job.resource_id).rid)
        before = registry.version_body(conn, rid, job.version_id - 1) \
            if job.version_id > 1 else None
        code = transition(before, encounter)
        if code is None:
            raise ValueError(f"Encounter/{job.resource_id}/_history/{job.version_id} is no "
                             "admission, discharge or transfer")
        bundled = [r for r in (_read(repo, ref) for ref in _references(encounter)) if r]
    if remote.business_identifier(encounter) is None:  # the visit number receivers key on
        encounter.setdefault("identifier", []).append(
            remote.own_identifier(system, "Encounter", job.resource_id))
    header = {"resourceType": "MessageHeader", "id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                     job.notification_id)),
              "eventCoding": {"system": EVENT_SYSTEM, "code": EVENT_CODES[code]},
              "destination": [{"endpoint": job.endpoint}],
              "source": {"endpoint": base or system},
              "focus": [{"reference": f"Encounter/{job.resource_id}"}]}
    return {"resourceType": "Bundle", "id": job.notification_id, "type": "message",
            "identifier": {"system": "urn:ietf:rfc:3986",
                           "value": f"urn:uuid:{job.notification_id}"},
            "timestamp": instant(time.time()),
            "entry": [_entry(r, base) for r in (header, encounter, *bundled)]}


def _references(encounter: dict[str, Any]) -> list[str]:
    """The Patient, Practitioners, Locations and Organization the Encounter points to."""
    found = [(encounter.get("subject") or {}).get("reference"),
             (encounter.get("serviceProvider") or {}).get("reference")]
    found += [(p.get("individual") or {}).get("reference")
              for p in encounter.get("participant") or []]
    found += [(loc.get("location") or {}).get("reference")
              for loc in encounter.get("location") or []]
    return list(dict.fromkeys(r for r in found if isinstance(r, str)))


def _read(repo: Repository, reference: str) -> dict[str, Any] | None:
    parsed = parse_reference(reference)
    if parsed is None or parsed.base is not None:
        return None
    try:
        return repo.read(parsed.type, parsed.id).json()
    except GatewayError:
        return None


def _entry(resource: dict[str, Any], base: str) -> dict[str, Any]:
    relative = f"{resource['resourceType']}/{resource['id']}"
    full = f"{base}/{relative}" if base else \
        f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, relative)}"
    return {"fullUrl": full, "resource": resource}
