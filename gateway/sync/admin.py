"""Operators' view of deliveries: list them, look at their attempts, send one again.

Shared by ``gateway deliveries list/retry`` and ``GET /sync/deliveries``,
``POST /sync/deliveries/{id}/$retry``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update

from gateway.errors import InvalidRequest, NotFound
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import (
    sync_attempt_table,
    sync_delivery_table,
    sync_event_table,
    sync_subscription_table,
)
from gateway.sync.destinations import destination_kind

D = sync_delivery_table.c
S = sync_subscription_table.c
E = sync_event_table.c
A = sync_attempt_table.c
DELIVERY_STATUSES = ("pending", "delivered", "failed", "skipped")


def _columns() -> list[Any]:
    return [D.id, D.kind, D.status, D.attempts, D.notification_id, D.order_key,
            D.created_at, D.next_attempt_at, D.delivered_at, D.last_status, D.last_error,
            S.resource_id.label("subscription"), S.endpoint, S.topic,
            S.status.label("subscription_status"),
            E.event_number, E.type, E.id.label("resource_id"), E.version_id, E.action]


def _statement() -> Any:
    return (select(*_columns())
            .join_from(sync_delivery_table, sync_subscription_table, S.sid == D.sid)
            .outerjoin(sync_event_table, E.pk == D.event_pk))


def _as_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["subscription"] = f"{destination_kind(out['topic'])}/{out['subscription']}"
    if out.get("type"):
        out["focus"] = f"{out.pop('type')}/{out.pop('resource_id')}/_history/" \
                       f"{out.pop('version_id')}"
    else:
        for key in ("type", "resource_id", "version_id"):
            out.pop(key, None)
    return out


def list_deliveries(db: Database, *, status: str | None = None,
                    subscription: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first, optionally one status and/or one Subscription id."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidRequest(f"Unknown delivery status {status!r}; use one of "
                             f"{', '.join(DELIVERY_STATUSES)}.", expression=["status"])
    statement = _statement().order_by(D.id.desc()).limit(max(1, min(limit, 1000)))
    if status:
        statement = statement.where(D.status == status)
    if subscription:
        statement = statement.where(S.resource_id == subscription.removeprefix("Subscription/"))
    with db.engine.connect() as conn:
        return [_as_dict(row) for row in conn.execute(statement)]


def get_delivery(db: Database, delivery_id: int) -> dict[str, Any]:
    """One delivery with every attempt (the evidence, DESIGN.md rule 6)."""
    with db.engine.connect() as conn:
        row = conn.execute(_statement().where(D.id == delivery_id)).first()
        if row is None:
            raise NotFound(f"Delivery {delivery_id} is not known.")
        out = _as_dict(row)
        attempts = conn.execute(select(A.attempt, A.started_at, A.latency_ms, A.http_status,
                                       A.error, A.outcome, A.url)
                                .where(A.delivery_id == delivery_id).order_by(A.pk))
        out["attempts"] = [dict(a._mapping) for a in attempts]
    return out


def retry_delivery(db: Database, delivery_id: int, base_url: str = "") -> dict[str, Any]:
    """Send a delivery again now, with a fresh retry window. A Subscription in ``error`` goes
    back to ``requested`` (a new handshake) so its queue resumes."""
    with db.engine.connect() as conn:
        db.begin_write(conn)
        row = conn.execute(select(D.id, D.sid, S.resource_id, S.status)
                           .join_from(sync_delivery_table, sync_subscription_table,
                                      S.sid == D.sid).where(D.id == delivery_id)).first()
        if row is None:
            raise NotFound(f"Delivery {delivery_id} is not known.")
        if row.status == "error":
            _request_again(Repository(db, conn, base_url), row.resource_id)
        now = time.time()  # lock order as in queue.py: subscription row, then deliveries
        conn.execute(update(sync_subscription_table).where(S.sid == row.sid)
                     .values(blocked_until=0.0))
        conn.execute(update(sync_delivery_table).where(D.id == delivery_id).values(
            status="pending", next_attempt_at=now, claimed_until=0.0, first_failure_at=None,
            attempts=0))
        conn.commit()
    return get_delivery(db, delivery_id)


def _request_again(repo: Repository, subscription_id: str) -> None:
    """Set a Subscription in error back to ``requested``; the router queues a handshake."""
    resource = repo.read("Subscription", subscription_id).json()
    resource["status"] = "requested"
    resource.pop("error", None)
    repo.update("Subscription", subscription_id, resource)
