"""The subscription registry: one ``sync_subscription`` row per Subscription resource.

The router keeps it in step with the Subscription resources as it reads their changes from
the outbox (so a Subscription receives exactly the changes committed after it, in outbox
order); the delivery workers read the channel from it and keep the destination circuit
(``blocked_until``) in it.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.errors import GatewayError
from gateway.search.request import SearchRequest
from gateway.store.access import Access
from gateway.store.clients import subscription_accesses
from gateway.store.tables import sync_delivery_table, sync_subscription_table, version_table
from gateway.sync.criteria import SubscriptionSpec, parse_criteria, parse_subscription

S = sync_subscription_table.c
V = version_table.c
#: Statuses whose subscriptions log events (``off`` and deleted ones do not).
LOGGING = ("requested", "active", "error")


@dataclass
class Registered:
    """A registry row as the router uses it, with its criteria parsed once."""

    sid: int
    resource_type: str
    request: SearchRequest
    last_event_number: int
    topic: str | None = None
    access: Access | None = None  # what its owner may see (store/clients.py)


def version_body(conn: Connection, rid: int, version: int) -> dict[str, Any] | None:
    """A resource as it was at ``version`` (None when that version is a delete)."""
    body = conn.execute(select(V.body).where(V.rid == rid, V.version_id == version)).scalar()
    return orjson.loads(body) if body else None


def apply_change(conn: Connection, rid: int, resource_id: str, version: int,
                 base_url: str) -> None:
    """Bring the registry row of one Subscription to ``version`` of the resource; queue a
    handshake when that version asks for one (status ``requested``)."""
    row = conn.execute(select(S.sid, S.resource_version).where(S.rid == rid)).first()
    if row is not None and row.resource_version >= version:
        return  # a worker already recorded this (or a later) version
    body = version_body(conn, rid, version)
    values = _values(body, base_url)
    values.update(resource_id=resource_id, resource_version=version, updated_at=time.time())
    if row is None:
        sid = conn.execute(insert(sync_subscription_table).values(
            rid=rid, last_event_number=0, blocked_until=0.0, last_sent_at=0.0,
            **values)).inserted_primary_key[0]
    else:
        sid = row.sid
        conn.execute(update(sync_subscription_table).where(S.sid == sid).values(**values))
    if values["status"] == "requested":
        queue_handshake(conn, sid)
    elif body is None:  # deleted: nothing of it will ever be sent
        conn.execute(update(sync_delivery_table).where(
            sync_delivery_table.c.sid == sid, sync_delivery_table.c.status == "pending")
            .values(status="skipped"))


def _values(body: dict[str, Any] | None, base_url: str) -> dict[str, Any]:
    """Registry columns for one version (deleted and unusable ones are ``off``/``error``)."""
    if body is None:
        return {"status": "off", "resource_type": "", "criteria": "", "endpoint": "",
                "payload": None, "headers": "[]", "error": "deleted", "topic": None}
    try:
        spec = parse_subscription(body, base_url=base_url)
    except GatewayError as error:  # written around the API check (e.g. `gateway load`)
        return {"status": "error", "resource_type": "", "criteria": str(body.get("criteria")),
                "endpoint": "", "payload": None, "headers": "[]", "error": error.message,
                "topic": None}
    return _spec_values(spec)


def _spec_values(spec: SubscriptionSpec) -> dict[str, Any]:
    return {"status": spec.status, "resource_type": spec.resource_type,
            "criteria": spec.criteria, "endpoint": spec.endpoint, "payload": spec.payload,
            "headers": orjson.dumps(spec.headers).decode(), "error": None,
            "topic": spec.topic, "content": spec.content,
            "heartbeat_seconds": spec.heartbeat_seconds, "timeout_seconds": spec.timeout_seconds}


def queue_handshake(conn: Connection, sid: int) -> None:
    now = time.time()
    conn.execute(insert(sync_delivery_table).values(
        sid=sid, event_pk=None, kind="handshake", order_key="", status="pending",
        notification_id=str(uuid.uuid4()), attempts=0, created_at=now, next_attempt_at=now,
        claimed_until=0.0))


def logging_subscriptions(conn: Connection, base_url: str) -> dict[str, list[Registered]]:
    """Subscriptions that log events, by the resource type their criteria is about."""
    rows = conn.execute(select(S.sid, S.resource_type, S.criteria, S.last_event_number, S.topic,
                               S.rid)
                        .where(S.status.in_(LOGGING), S.resource_type != "")
                        .order_by(S.sid)).all()
    accesses = subscription_accesses(conn, [row.rid for row in rows])
    out: dict[str, list[Registered]] = {}
    for row in rows:
        out.setdefault(row.resource_type, []).append(
            Registered(row.sid, row.resource_type, _criteria(row.criteria, base_url),
                       row.last_event_number, row.topic, accesses[row.rid]))
    return out


@functools.lru_cache(maxsize=4096)
def _criteria(criteria: str, base_url: str) -> SearchRequest:
    """A stored criteria parsed once per process (the router reads the registry every batch;
    the parsed request is only read, never changed)."""
    return parse_criteria(criteria, base_url)
