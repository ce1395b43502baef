"""``$status`` and ``$events`` on Subscriptions (Subscriptions R5 Backport IG,
OperationDefinition-backport-subscription-status and -events).

``$events`` replays any range of a subscription's event log (within retention), so a
subscriber that noticed a gap in event numbers fetches exactly what it missed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from gateway.errors import InvalidRequest, NotFound
from gateway.store.db import Database
from gateway.store.tables import sync_event_table, sync_subscription_table, version_table
from gateway.sync.backport import Event, Subscriber, notification_bundle, status_parameters
from gateway.sync.criteria import CONTENTS
from gateway.sync.destinations import NOT_SUBSCRIPTIONS

S = sync_subscription_table.c
E = sync_event_table.c
V = version_table.c
MAX_EVENTS = 1000


def _subscriber(row: Any, content: str | None = None) -> Subscriber:
    return Subscriber(row.resource_id, row.topic or row.criteria, row.status,
                      row.last_event_number, content or row.content or "id-only")


def _row(conn: Any, subscription_id: str) -> Any:
    row = conn.execute(select(S.sid, S.resource_id, S.topic, S.criteria, S.status,
                              S.last_event_number, S.content)
                       .where(S.resource_id == subscription_id,
                              or_(S.topic.is_(None), S.topic.not_in(NOT_SUBSCRIPTIONS)))).first()
    if row is None or (row.status == "off" and row.criteria == ""):
        raise NotFound(f"Subscription/{subscription_id} is not known (or not yet "
                       "registered; retry in a moment).")
    return row


def status_bundle(db: Database, ids: list[str], base: str = "") -> dict[str, Any]:
    """``$status``: a searchset of SubscriptionStatus Parameters (type ``query-status``)."""
    with db.engine.connect() as conn:
        if ids:
            rows = [_row(conn, i) for i in ids]
        else:
            rows = list(conn.execute(select(S.sid, S.resource_id, S.topic, S.criteria,
                                            S.status, S.last_event_number, S.content)
                                     .where(S.criteria != "").order_by(S.sid)))
    entries = [{"resource": status_parameters(_subscriber(r), "query-status", [], base),
                "search": {"mode": "match"}} for r in rows]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}


def _number(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer.", expression=[name])
    return int(value)


def events_bundle(db: Database, subscription_id: str, params: dict[str, str],
                  base: str = "") -> dict[str, Any]:
    """``$events``: the events numbered eventsSinceNumber..eventsUntilNumber (inclusive)."""
    since = _number(params.get("eventsSinceNumber"), "eventsSinceNumber") or 1
    until = _number(params.get("eventsUntilNumber"), "eventsUntilNumber")
    content = params.get("content")
    if content is not None and content not in CONTENTS:
        raise InvalidRequest(f"content must be one of {', '.join(CONTENTS)}.",
                             expression=["content"])
    with db.engine.connect() as conn:
        row = _row(conn, subscription_id)
        sub = _subscriber(row, content)
        statement = (select(E.event_number, E.created_at, E.type, E.id, E.version_id,
                            E.action, E.patient, E.rid)
                     .where(E.sid == row.sid, E.event_number >= since)
                     .order_by(E.event_number).limit(MAX_EVENTS))
        if until is not None:
            statement = statement.where(E.event_number <= until)
        events = [_event(conn, e, sub.content) for e in conn.execute(statement)]
    return notification_bundle(sub, "query-event", events, base)


def _event(conn: Any, row: Any, content: str) -> Event:
    body = None
    if content == "full-resource" and row.action != "delete":
        body = conn.execute(select(V.body).where(V.rid == row.rid,
                                                 V.version_id == row.version_id)).scalar()
    return Event(row.event_number, row.created_at, row.type, row.id, row.version_id,
                 row.action, row.patient, body)
