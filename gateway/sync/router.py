"""The router: outbox rows, in commit order, become events in each matching subscription's log.

Why this is loss-free. The repository writes one ``outbox`` row per change in the change's own
transaction (DESIGN.md rule 1), so a committed change always has its row. The router reads the
rows after its cursor (``store/outbox.py``: a ``sync_cursor`` row, gap-free runs of sequence
numbers on PostgreSQL), appends the events and deliveries, and moves the cursor, all in ONE
transaction of its own: a crash anywhere rolls all of it back and the next run reads the same
rows again. Only one router runs at a time (the cursor row is locked with
``FOR UPDATE SKIP LOCKED``; SQLite serializes writers anyway), which is also what makes each
subscription's event numbers gap-free.

Matching. Each change is matched with ``store.query.matches`` -- the SQL the search
API runs -- restricted to the changed resource's row id: the same ``SearchRequest``, one
meaning. Criteria are evaluated against the resource's indexed state when the router runs
(normally milliseconds after the commit); a delete leaves no indexed state, so deletes reach
only subscriptions without search parameters (e.g. ``criteria: "Encounter"``).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from gateway.search.request import SearchRequest
from gateway.store import query
from gateway.store.access import access_as, visible
from gateway.store.db import Database
from gateway.store.outbox import ROUTER, OutboxCursor, prune_outbox
from gateway.store.tables import (
    resource_table,
    sync_attempt_table,
    sync_delivery_table,
    sync_event_table,
    sync_subscription_table,
)
from gateway.sync import careteam, partners, registry, remote
from gateway.sync.registry import Registered
from gateway.sync.topics import TOPICS

log = logging.getLogger(__name__)
R = resource_table.c
__all__ = ["ROUTER", "Router", "prune", "prune_outbox"]


class Router:
    """Fans the outbox out into per-subscription event logs, one batch per transaction."""

    def __init__(self, db: Database, *, base_url: str = "", batch_size: int = 500,
                 retention_seconds: float = 30 * 86400.0) -> None:
        self.db = db
        self.base_url = base_url
        self.batch_size = batch_size
        self.retention_seconds = retention_seconds
        self.cursor = OutboxCursor(db, ROUTER, batch_size)
        self._last_prune = 0.0

    def run_until_idle(self) -> int:
        """Route until the outbox is consumed; the number of outbox rows consumed."""
        total = 0
        while (consumed := self.route_once()) > 0:
            total += consumed
        return total

    def has_work(self) -> bool:
        """A cheap read-only look: are there outbox rows after the cursor?"""
        return self.cursor.has_work()

    def route_once(self) -> int:
        """Route one batch; 0 when there was nothing to do (or another router is busy)."""
        if not self.has_work():
            return 0
        self.cursor.ensure()
        with self.db.engine.connect() as conn:
            self.db.begin_write(conn)
            position = self.cursor.claim(conn)
            if position is None:
                return 0  # another process is routing right now
            rows = self.cursor.rows(conn, position)
            if rows:
                self._route(conn, rows)
                self.cursor.advance(conn, rows[-1].seq)
            conn.commit()
            return len(rows)

    # -- fan-out ---------------------------------------------------------------------------

    def _route(self, conn: Connection, rows: list[Any]) -> None:
        subscriptions = registry.logging_subscriptions(conn, self.base_url)
        # Care-team routing can only reach an Endpoint; without any, skip its lookups.
        endpoints = _any_endpoint(conn) or any(row.type == "Endpoint" for row in rows)
        pushing = [p for p in partners.partners(conn) if p.pushes]
        events = _Events()
        for row in rows:
            if row.type == "Subscription":
                events.write(conn)  # the registry is read again: numbers must be stored
                registry.apply_change(conn, row.rid, row.id, row.version_id, self.base_url)
                subscriptions = registry.logging_subscriptions(conn, self.base_url)
                continue
            if row.type == "Endpoint":
                careteam.apply_endpoint_change(
                    conn, row.rid, registry.version_body(conn, row.rid, row.version_id))
            versions = _Versions(conn, row)
            for sub in subscriptions.get(row.type, []):
                if _triggered(sub, versions) and _matches(conn, sub, row):
                    events.append(sub, row)
            if endpoints:
                self._route_to_care_teams(conn, row, versions, events)
            if pushing:
                _route_to_partners(conn, row, versions, pushing, events)
        events.write(conn)

    def _route_to_care_teams(self, conn: Connection, row: Any, versions: _Versions,
                             events: _Events) -> None:
        """Care-team routing (careteam.py): the patient's care team members' Endpoints."""
        if not row.patient or row.type not in ("Encounter", "CarePlan") \
                or not careteam.notifies(row.type, *versions.pair()):
            return
        repo = careteam.repository(self.db, conn, self.base_url)
        for rid, (endpoint_id, body) in careteam.endpoints_for(repo, row.patient,
                                                               time.time()).items():
            sid = careteam.endpoint_sid(conn, rid, endpoint_id, body)
            if sid is not None and careteam.accepts(body, row.type, row.action):
                events.append(events.registered(conn, sid, row.type), row)

    # -- retention -------------------------------------------------------------------------

    def prune_if_due(self, every: float = 60.0) -> int:
        """Apply the retention at most once a minute (idle or not); events dropped."""
        now = time.time()
        if now - self._last_prune < every:
            return 0
        self._last_prune = now
        with self.db.engine.connect() as conn:
            self.db.begin_write(conn)
            dropped = prune(conn, now - self.retention_seconds)
            prune_outbox(conn, now - self.retention_seconds)
            conn.commit()
        return dropped


def _route_to_partners(conn: Connection, row: Any, versions: _Versions,
                       pushing: list[partners.Partner], events: _Events) -> None:
    """Partner push (push.py): changes of the partner's types, except deletions and what
    came from the partner (no echo, ``_from_partner``)."""
    if row.action == "delete":
        return
    for partner in pushing:
        if row.type in partner.types and not _from_partner(conn, partner, row, versions):
            events.append(events.registered(conn, partner.sid, row.type), row)


def _from_partner(conn: Connection, partner: partners.Partner, row: Any,
                  versions: _Versions) -> bool:
    """Whether pushing this version would only echo the partner's own change: the partner
    has it already (pulled from it, or pushed to it: compared by version), or this very
    version named the partner as its source (a write the partner made here itself). A
    version that only keeps the meta.source of the version before it -- a client editing a
    pulled resource as it read it -- is a local edit, and is pushed."""
    if remote.in_sync(conn, partner.sid, row.rid, row.version_id):
        return True
    before, after = versions.pair()
    return partner.is_source_of(after) and _source(before) != _source(after)


def _source(resource: dict[str, Any] | None) -> Any:
    return ((resource or {}).get("meta") or {}).get("source")


def _any_endpoint(conn: Connection) -> bool:
    return conn.execute(select(R.rid).where(R.type == "Endpoint", R.deleted.is_(False))
                        .limit(1)).first() is not None


class _Versions:
    """The changed resource before and after the change, read once and only if a topic
    needs them."""

    def __init__(self, conn: Connection, row: Any) -> None:
        self.conn, self.row = conn, row
        self._pair: tuple[Any, Any] | None = None

    def pair(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if self._pair is None:
            rid, version = self.row.rid, self.row.version_id
            self._pair = (registry.version_body(self.conn, rid, version - 1)
                          if version > 1 else None,
                          registry.version_body(self.conn, rid, version))
        return self._pair


def _triggered(sub: Registered, versions: _Versions) -> bool:
    """A topic-based subscription's trigger (topics.py); classic ones always pass."""
    if sub.topic is None:
        return True
    topic = TOPICS.get(sub.topic)
    return topic is not None and topic.trigger(*versions.pair())


def _matches(conn: Connection, sub: Registered, row: Any) -> bool:
    """The API's search condition for this subscription, restricted to the changed row and
    to what the subscription's owner may read (store/access.py)."""
    if sub.access is not None and row.action == "delete":
        return False  # a deletion no longer shows whose patient it was
    with access_as(sub.access):
        if not sub.request.criteria:
            return sub.access is None or visible(conn, row.rid, query.execute)
        if row.action == "delete":
            return False
        return query.matches(conn, sub.request, row.rid, row.type)


class _Events:
    """The events one routing batch appends, numbered as they are appended and written
    together (a few multi-row statements instead of three per event). Subscription rows are
    updated in ``sid`` order, the order delivery records lock them in (queue.py)."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, int, Any]] = []
        self._last: dict[int, int] = {}

    def registered(self, conn: Connection, sid: int, resource_type: str) -> Registered:
        """A registry row reached by routing rather than by its criteria (an Endpoint, a
        partner), numbered after what this batch has appended to it already."""
        number = self._last.get(sid)
        if number is None:
            number = conn.execute(select(sync_subscription_table.c.last_event_number)
                                  .where(sync_subscription_table.c.sid == sid)).scalar_one()
        return Registered(sid, resource_type, SearchRequest(resource_type), int(number))

    def append(self, sub: Registered, row: Any) -> None:
        sub.last_event_number += 1
        self._last[sub.sid] = sub.last_event_number
        self._rows.append((sub.sid, sub.last_event_number, row))

    def write(self, conn: Connection) -> None:
        if not self._rows:
            return
        now = time.time()
        pks = conn.execute(insert(sync_event_table).returning(
            sync_event_table.c.pk, sort_by_parameter_order=True), [
            {"sid": sid, "event_number": number, "outbox_seq": row.seq, "rid": row.rid,
             "type": row.type, "id": row.id, "version_id": row.version_id,
             "action": row.action, "patient": row.patient, "created_at": now}
            for sid, number, row in self._rows]).scalars().all()
        conn.execute(insert(sync_delivery_table), [
            {"sid": sid, "event_pk": pk, "kind": "event",
             "order_key": row.patient or f"{row.type}/{row.id}", "status": "pending",
             "notification_id": str(uuid.uuid4()), "attempts": 0, "created_at": now,
             "next_attempt_at": now, "claimed_until": 0.0}
            for (sid, _number, row), pk in zip(self._rows, pks, strict=True)])
        conn.execute(update(sync_subscription_table)
                     .where(sync_subscription_table.c.sid == bindparam("row_sid"))
                     .values(last_event_number=bindparam("number")),
                     [{"row_sid": sid, "number": number}
                      for sid, number in sorted(self._last.items())])
        self._rows.clear()
        self._last.clear()


def prune(conn: Connection, before: float) -> int:
    """Drop events older than the retention, with their deliveries and attempts
    (retention is independent of delivery success)."""
    E, D, A = sync_event_table.c, sync_delivery_table.c, sync_attempt_table.c
    old = select(E.pk).where(E.created_at < before)
    if conn.execute(select(func.count()).select_from(old.subquery())).scalar_one() == 0:
        return 0
    deliveries = select(D.id).where(and_(D.event_pk.is_not(None), D.event_pk.in_(old)))
    conn.execute(delete(sync_attempt_table).where(A.delivery_id.in_(deliveries)))
    conn.execute(delete(sync_delivery_table).where(D.event_pk.in_(old)))
    return conn.execute(delete(sync_event_table).where(E.created_at < before)).rowcount
