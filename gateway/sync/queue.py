"""The delivery queue: claim due notifications, record each attempt and its consequences.

Claims are leases: a worker marks the rows it takes (``claimed_until``) in a short
transaction -- on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED``, so several workers
never take the same row (DESIGN.md rule 5) -- and sends outside any transaction. A worker
that dies mid-send simply lets its lease run out and the notification is sent again: at
least once. Only the oldest unfinished notification of each (subscription, patient) can be
claimed, which keeps each patient's notifications in order per destination; a destination
whose last attempt failed is skipped until its backoff ends (``blocked_until``), so it never
holds up the others.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, exists, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import (
    sync_attempt_table,
    sync_delivery_table,
    sync_event_table,
    sync_subscription_table,
    version_table,
)
from gateway.sync.destinations import NOT_SUBSCRIPTIONS
from gateway.sync.retry import ErrorKind, RetryPolicy

log = logging.getLogger(__name__)
D = sync_delivery_table.c
S = sync_subscription_table.c
E = sync_event_table.c
V = version_table.c
#: Failures that say the destination itself is unwell (they trip its circuit).
DESTINATION_FAULTS = (ErrorKind.TRANSPORT, ErrorKind.SERVER, ErrorKind.GONE)
#: Registry ``content`` values whose notifications carry the changed resource.
WITH_BODY = ("full-resource", "rest-write", "davinci-message")


@dataclass
class Job:
    """One claimed notification, with everything needed to send it."""

    delivery_id: int
    sid: int
    kind: str
    notification_id: str
    attempt: int
    first_failure_at: float | None
    subscription_id: str
    subscription_version: int
    endpoint: str
    payload: str | None
    headers: list[tuple[str, str]]
    event_number: int | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: int | None = None
    action: str | None = None
    body: bytes | None = None
    topic: str | None = None
    content: str | None = None
    status: str = "active"
    events_since: int = 0
    event_time: float | None = None
    patient: str | None = None
    timeout_seconds: int | None = None


@dataclass
class Outcome:
    """What one attempt found out."""

    started_at: float
    latency_ms: float
    url: str
    http_status: int | None = None
    error: str | None = None
    kind: ErrorKind | None = None
    #: Bookkeeping of the attempt's consequences (a remote copy, a conflict), run in the
    #: transaction that records the attempt.
    after: Callable[[Connection], None] | None = None
    #: Nothing was sent because nothing needed sending (the destination has this version,
    #: or a newer one, already); recorded as ``skipped`` with ``error`` saying why.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.kind is None and not self.skipped


def has_due(db: Database, now: float) -> bool:
    """A read-only look for claimable work, so idle polls take no write lock."""
    with db.engine.connect() as conn:
        return conn.execute(_claimable(now, 1, lock=False)).first() is not None


def claim(db: Database, limit: int, lease: float) -> list[Job]:
    """Take up to ``limit`` due notifications, each the head of its (subscription, patient)
    queue, for ``lease`` seconds."""
    now = time.time()
    if not has_due(db, now):
        return []
    with db.engine.connect() as conn:
        db.begin_write(conn)
        ids = [r[0] for r in conn.execute(_claimable(now, limit))]
        if ids:
            conn.execute(update(sync_delivery_table).where(D.id.in_(ids)).values(
                claimed_until=now + lease, attempts=D.attempts + 1))
        jobs = _jobs(conn, ids)
        conn.commit()
    return jobs


def _claimable(now: float, limit: int, *, lock: bool = True) -> Any:
    earlier = sync_delivery_table.alias("earlier")
    deliverable = or_(and_(D.kind == "handshake", S.status == "requested"),
                      and_(D.kind.in_(("event", "heartbeat")), S.status == "active"))
    blocked_by_earlier = exists().where(
        earlier.c.sid == D.sid, earlier.c.order_key == D.order_key,
        earlier.c.status == "pending", earlier.c.id < D.id)
    statement = (select(D.id)
                 .join_from(sync_delivery_table, sync_subscription_table, S.sid == D.sid)
                 .where(D.status == "pending", D.next_attempt_at <= now,
                        D.claimed_until <= now, S.blocked_until <= now, deliverable,
                        ~blocked_by_earlier)
                 .order_by(D.id).limit(limit))
    return statement.with_for_update(skip_locked=True, of=sync_delivery_table) if lock \
        else statement


def _jobs(conn: Connection, ids: list[int]) -> list[Job]:
    if not ids:
        return []
    statement = (
        select(D.id, D.sid, D.kind, D.notification_id, D.attempts, D.first_failure_at,
               S.resource_id, S.resource_version, S.endpoint, S.payload, S.headers,
               E.event_number, E.type, E.id.label("event_resource_id"), E.rid, E.version_id,
               E.action, S.topic, S.content, S.status, S.last_event_number, E.created_at,
               E.patient, S.timeout_seconds)
        .join_from(sync_delivery_table, sync_subscription_table, S.sid == D.sid)
        .outerjoin(sync_event_table, E.pk == D.event_pk)
        .where(D.id.in_(ids)).order_by(D.id))
    jobs, wanted = [], []
    for row in conn.execute(statement):
        job = Job(row.id, row.sid, row.kind, row.notification_id, row.attempts,
                  row.first_failure_at, row.resource_id, row.resource_version, row.endpoint,
                  row.payload, [tuple(h) for h in orjson.loads(row.headers)],
                  row.event_number, row.type, row.event_resource_id, row.version_id,
                  row.action, None, row.topic, row.content, row.status,
                  row.last_event_number, row.created_at, row.patient, row.timeout_seconds)
        wants_body = row.content in WITH_BODY if row.topic else bool(row.payload)
        if row.rid is not None and wants_body and row.action != "delete":
            wanted.append((job, (row.rid, row.version_id)))
        jobs.append(job)
    bodies = _bodies(conn, {key for _, key in wanted})
    for job, key in wanted:
        job.body = bodies.get(key)
    return jobs


def _bodies(conn: Connection, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored JSON of each (row id, version) wanted, read once in one statement: an
    event fanned out to many endpoints shares one ``bytes`` object, sent as stored."""
    if not keys:
        return {}
    rows = conn.execute(select(V.rid, V.version_id, V.body).where(
        tuple_(V.rid, V.version_id).in_(sorted(keys))))
    return {(rid, version): body for rid, version, body in rows}


# -- recording -----------------------------------------------------------------------------

def record(db: Database, job: Job, outcome: Outcome, policy: RetryPolicy,
           base_url: str = "") -> str:
    """Record one attempt and its consequences in one transaction; returns the delivery's
    new status (``delivered``, ``pending`` or ``failed``)."""
    with db.engine.connect() as conn:
        db.begin_write(conn)
        status = _record(conn, db, job, outcome, policy, base_url)
        conn.commit()
    return status


def record_many(db: Database, attempts: list[tuple[Job, Outcome]], policy: RetryPolicy,
                base_url: str = "") -> list[str | None]:
    """Record many attempts in one transaction (one commit instead of one per attempt), in
    subscription order -- the router's lock order -- each in its own savepoint, so one that
    fails to record (None) leaves the others recorded; its lease lapses and it is sent
    again. Handshakes, which also write the Subscription resource, go through ``record``."""
    order = sorted(range(len(attempts)), key=lambda i: (attempts[i][0].sid, i))
    statuses: list[str | None] = [None] * len(attempts)
    delivered = [i for i in order if attempts[i][1].ok and attempts[i][0].kind != "handshake"]
    with db.engine.connect() as conn:
        db.begin_write(conn)
        _deliver_many(conn, [attempts[i] for i in delivered])
        for index in delivered:
            statuses[index] = "delivered"
        for index in (i for i in order if statuses[i] is None):
            job, outcome = attempts[index]
            savepoint = conn.begin_nested()
            try:
                statuses[index] = _record(conn, db, job, outcome, policy, base_url)
            except Exception:
                savepoint.rollback()
                log.exception("recording delivery %s failed", job.delivery_id)
            else:
                savepoint.commit()
        conn.commit()
    return statuses


def _deliver_many(conn: Connection, attempts: list[tuple[Job, Outcome]]) -> None:
    """Successful attempts, set-wise: what ``_record`` does for each, in three statements
    for all of them (subscription rows first, then deliveries: the lock order)."""
    if not attempts:
        return
    now = time.time()
    for job, outcome in attempts:
        _after(conn, job, outcome)
    conn.execute(insert(sync_attempt_table), [
        {"delivery_id": job.delivery_id, "attempt": job.attempt,
         "started_at": outcome.started_at, "latency_ms": outcome.latency_ms,
         "http_status": outcome.http_status, "error": None, "outcome": "delivered",
         "url": outcome.url[:1300]} for job, outcome in attempts])
    conn.execute(update(sync_subscription_table)
                 .where(S.sid.in_(sorted({job.sid for job, _ in attempts})))
                 .values(blocked_until=0.0, last_sent_at=now))
    by_status: dict[int | None, list[int]] = {}
    for job, outcome in attempts:
        by_status.setdefault(outcome.http_status, []).append(job.delivery_id)
    for http_status, ids in by_status.items():  # one statement per status (usually one)
        conn.execute(update(sync_delivery_table).where(D.id.in_(sorted(ids))).values(
            status="delivered", delivered_at=now, claimed_until=0.0,
            last_status=http_status, last_error=None))


def _record(conn: Connection, db: Database, job: Job, outcome: Outcome, policy: RetryPolicy,
            base_url: str) -> str:
    now = time.time()
    _after(conn, job, outcome)
    if outcome.skipped:
        _attempt(conn, job, outcome, "skipped")
        _skip(conn, job, outcome)
        return "skipped"
    if outcome.ok:
        if job.kind == "handshake":  # resource first: see router.py on lock order
            _set_status(conn, db, job, "active", None, base_url, expect="requested")
        _attempt(conn, job, outcome, "delivered")
        _finish(conn, job, outcome, now)
        return "delivered"
    assert outcome.kind is not None
    first = job.first_failure_at or outcome.started_at
    delay = None if job.kind == "handshake" else \
        policy.next_delay(job.attempt, outcome.kind, now - first, random.random())
    if delay is None:
        if job.kind == "handshake" or outcome.kind not in (ErrorKind.CLIENT,
                                                           ErrorKind.CONFLICT):
            message = f"Delivery to {job.endpoint} failed: {outcome.error}"
            _set_status(conn, db, job, "error", message, base_url, expect=None)
        _attempt(conn, job, outcome, "failed")
        _fail(conn, job, outcome)
        return "failed"
    _attempt(conn, job, outcome, "retry")
    _reschedule(conn, job, outcome, first, now + delay)
    return "pending"


def _after(conn: Connection, job: Job, outcome: Outcome) -> None:
    """Run an attempt's bookkeeping (a remote copy, a conflict) in a savepoint of its own:
    when it fails, the attempt is still recorded -- what was sent was sent, and sending it
    again would fail the same way -- and the other attempts of the batch are untouched."""
    if outcome.after is None:
        return
    savepoint = conn.begin_nested()
    try:
        outcome.after(conn)
    except Exception:
        savepoint.rollback()
        log.exception("bookkeeping of delivery %s failed; the attempt is recorded",
                      job.delivery_id)
    else:
        savepoint.commit()


def _attempt(conn: Connection, job: Job, outcome: Outcome, result: str) -> None:
    conn.execute(insert(sync_attempt_table).values(
        delivery_id=job.delivery_id, attempt=job.attempt, started_at=outcome.started_at,
        latency_ms=outcome.latency_ms, http_status=outcome.http_status,
        error=outcome.error, outcome=result, url=outcome.url[:1300]))


def _finish(conn: Connection, job: Job, outcome: Outcome, now: float) -> None:
    # Lock order everywhere: subscription row, then delivery rows (no deadlock with the router).
    conn.execute(update(sync_subscription_table).where(S.sid == job.sid)
                 .values(blocked_until=0.0, last_sent_at=now))
    conn.execute(update(sync_delivery_table).where(D.id == job.delivery_id).values(
        status="delivered", delivered_at=now, claimed_until=0.0,
        last_status=outcome.http_status, last_error=None))
    if job.kind == "handshake":  # one successful handshake answers every pending one
        conn.execute(update(sync_delivery_table).where(
            D.sid == job.sid, D.kind == "handshake", D.status == "pending",
            D.id != job.delivery_id).values(status="skipped"))


def _skip(conn: Connection, job: Job, outcome: Outcome) -> None:
    conn.execute(update(sync_delivery_table).where(D.id == job.delivery_id).values(
        status="skipped", claimed_until=0.0, last_status=None, last_error=outcome.error))


def _fail(conn: Connection, job: Job, outcome: Outcome) -> None:
    conn.execute(update(sync_delivery_table).where(D.id == job.delivery_id).values(
        status="failed", claimed_until=0.0, last_status=outcome.http_status,
        last_error=outcome.error,
        first_failure_at=job.first_failure_at or outcome.started_at))


def _reschedule(conn: Connection, job: Job, outcome: Outcome, first: float,
                when: float) -> None:
    if outcome.kind in DESTINATION_FAULTS:
        conn.execute(update(sync_subscription_table).where(S.sid == job.sid)
                     .values(blocked_until=when))
    conn.execute(update(sync_delivery_table).where(D.id == job.delivery_id).values(
        next_attempt_at=when, claimed_until=0.0, first_failure_at=first,
        last_status=outcome.http_status, last_error=outcome.error))


def _set_status(conn: Connection, db: Database, job: Job, status: str, error: str | None,
                base_url: str, *, expect: str | None) -> None:
    """Move the Subscription resource (and its registry row) to ``status``
    (subscription.html#2.46.7.1), unless the subscriber changed it meanwhile. Endpoints and
    partners have no Subscription resource."""
    if job.topic in NOT_SUBSCRIPTIONS:
        return
    repo = Repository(db, conn, base_url)
    row = repo.current_row("Subscription", job.subscription_id, lock=True)
    if row is None or row.deleted:
        return
    if expect is not None and row.version_id != job.subscription_version:
        return  # a newer version asked for its own handshake
    resource = repo.read("Subscription", job.subscription_id).json()
    if expect is not None and resource.get("status") != expect:
        return
    resource["status"] = status
    if error is None:
        resource.pop("error", None)
    else:
        resource["error"] = error[:1000]
    stored = repo.update("Subscription", job.subscription_id, resource).resource
    conn.execute(update(sync_subscription_table).where(S.sid == job.sid).values(
        status=status, error=error, resource_version=stored.version_id,
        updated_at=time.time()))


# -- heartbeats (Backport IG: channel extension backport-heartbeat-period) -----------------

def queue_heartbeats(db: Database, now: float | None = None) -> int:
    """Queue a heartbeat for each active topic subscription that has sent nothing for its
    heartbeat period and has nothing waiting; the number queued."""
    now = now or time.time()
    pending = exists().where(D.sid == S.sid, D.status == "pending")
    due = select(S.sid).where(S.status == "active", S.heartbeat_seconds.is_not(None),
                              S.last_sent_at + S.heartbeat_seconds <= now, ~pending)
    with db.engine.connect() as conn:
        if conn.execute(due.limit(1)).first() is None:
            return 0
    with db.engine.connect() as conn:
        db.begin_write(conn)
        sids = [r[0] for r in conn.execute(due)]
        for sid in sids:
            conn.execute(insert(sync_delivery_table).values(
                sid=sid, event_pk=None, kind="heartbeat", order_key="", status="pending",
                notification_id=str(uuid.uuid4()), attempts=0, created_at=now,
                next_attempt_at=now, claimed_until=0.0))
        conn.commit()
    return len(sids)
