"""Notification Bundles of topic-based Subscriptions (Subscriptions R5 Backport IG, R4):
``Bundle.type = history`` whose first entry is the ``backport-subscription-status-r4``
Parameters (StructureDefinition-backport-subscription-notification-r4.html), followed by one
entry per event focus according to the payload content: ``empty`` (none), ``id-only``
(fullUrl and request only) or ``full-resource`` (with the resource).

The same builder answers ``$status`` (type ``query-status``) and ``$events``
(``query-event``), so a subscriber that missed notifications gets the same shapes back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

STATUS_PROFILE = ("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                  "backport-subscription-status-r4")
_METHODS = {"create": ("POST", "201"), "update": ("PUT", "200"), "delete": ("DELETE", "204")}


@dataclass(frozen=True)
class Event:
    """One event of a subscription's log, as a notification shows it."""

    number: int
    timestamp: float
    resource_type: str
    resource_id: str
    version_id: int
    action: str
    patient: str | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class Subscriber:
    """The Subscription a notification is about."""

    subscription_id: str
    topic: str
    status: str
    events_since: int
    content: str
    kind: str = "Subscription"  # care-team routing notifies on behalf of an Endpoint


def instant(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _url(base: str, relative: str) -> str:
    return f"{base}/{relative}" if base else relative


def status_parameters(sub: Subscriber, kind: str, events: list[Event],
                      base: str = "") -> dict[str, Any]:
    """The SubscriptionStatus as R4 Parameters (backport-subscription-status-r4)."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription",
         "valueReference": {"reference": _url(base, f"{sub.kind}/{sub.subscription_id}")}},
        {"name": "topic", "valueCanonical": sub.topic},
        {"name": "status", "valueCode": sub.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(sub.events_since)},
    ]
    parameters += [{"name": "notification-event", "part": _event_parts(sub, e, base)}
                   for e in events]
    return {"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}


def _event_parts(sub: Subscriber, event: Event, base: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event.number)},
        {"name": "timestamp", "valueInstant": instant(event.timestamp)},
    ]
    if sub.content != "empty":
        focus = _url(base, f"{event.resource_type}/{event.resource_id}")
        parts.append({"name": "focus", "valueReference": {"reference": focus}})
        if event.patient and event.patient != f"{event.resource_type}/{event.resource_id}":
            parts.append({"name": "additional-context",
                          "valueReference": {"reference": _url(base, event.patient)}})
    return parts


def notification_bundle(sub: Subscriber, kind: str, events: list[Event], base: str = "",
                        bundle_id: str | None = None, now: float | None = None
                        ) -> dict[str, Any]:
    """A ``history`` Bundle: the status first, then the focus entries (if any)."""
    status_id = str(uuid.uuid4())
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{status_id}",
        "resource": dict(status_parameters(sub, kind, events, base), id=status_id),
        "request": {"method": "GET",
                    "url": _url(base, f"{sub.kind}/{sub.subscription_id}/$status")},
        "response": {"status": "200"}}]
    if sub.content != "empty":
        entries += [_focus_entry(sub, e, base) for e in events]
    stamp = now if now is not None else datetime.now(UTC).timestamp()
    return {"resourceType": "Bundle", "id": bundle_id or str(uuid.uuid4()), "type": "history",
            "timestamp": instant(stamp), "entry": entries}


def _focus_entry(sub: Subscriber, event: Event, base: str) -> dict[str, Any]:
    method, status = _METHODS.get(event.action, ("PUT", "200"))
    relative = f"{event.resource_type}/{event.resource_id}"
    entry: dict[str, Any] = {"fullUrl": _url(base, relative),
                             "request": {"method": method, "url": relative},
                             "response": {"status": status,
                                          "etag": f'W/"{event.version_id}"'}}
    if sub.content == "full-resource" and event.body:
        entry["resource"] = orjson.loads(event.body)
    return entry
