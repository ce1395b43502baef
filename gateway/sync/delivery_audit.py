"""Every delivery attempt leaves an AuditEvent: a disclosure of patient data to another
system is an access like a read, and a security review asks who was sent what, when, and
whether it arrived.

The event is written by the repository in the transaction that records the attempt
(``Outcome.after``), so an attempt is never recorded without its AuditEvent; if the audit
write fails, the attempt is not recorded either and is sent again (never silently lost).
Recorded as DICOM 110106 Export (R4 auditevent.html; the Basic Audit Log Patterns IG has no
pattern for subscription notifications): the Subscription as the agent, its endpoint as the
agent's network address, the changed resource and its patient as entities, the outcome
from the receiver's answer. Only when authorization is on, like the rest of the audit trail.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gateway.auth.audit import Access, store_event
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.sync.queue import Job, Outcome

SUBSCRIPTION_SYSTEM = "urn:fhir-care-gateway:subscription"


def audited(db: Database, base_url: str, job: Job, outcome: Outcome) -> None:
    """Chain the attempt's AuditEvent onto ``outcome.after``."""
    then = outcome.after

    def after(conn: Connection) -> None:
        if then is not None:
            then(conn)
        store_event(Repository(db, conn, base_url), delivery_access(job, outcome))

    outcome.after = after


def delivery_access(job: Job, outcome: Outcome) -> Access:
    """The audit record of one attempt; no answer at all (refused connection, timeout)
    counts as 599, a serious failure (outcome 8), with the error in the description."""
    status = outcome.http_status if outcome.http_status is not None else 599
    about = (job.resource_type, job.resource_id) if job.resource_id \
        else ("Subscription", job.subscription_id)
    number = f" event {job.event_number}" if job.event_number is not None else ""
    detail = f"{job.kind}{number} of Subscription/{job.subscription_id}"
    if outcome.error:
        detail += f": {outcome.error}"
    return Access(job.subscription_id, "delivery", status, about[0], about[1],
                  patient=job.patient, address=outcome.url or job.endpoint,
                  detail=detail[:500], recorded=outcome.started_at,
                  agent_system=SUBSCRIPTION_SYSTEM)

