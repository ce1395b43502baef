"""Notifications about the patient, delivered or failed, per recipient (gateway/sync).

Each delivery row of an event about the patient is one entry: the recipient is the
Subscription or care-team member Endpoint it was sent to, the reference is the version the
notification carried (the event's focus), the time when it was delivered or last tried.
"""

from __future__ import annotations

from gateway.timeline import describe as d
from gateway.timeline.entry import BAD, GOOD, Entry
from gateway.timeline.sources import Delivery


def delivery_entries(deliveries: list[Delivery], names: d.Names) -> list[Entry]:
    return [_entry(delivery, names) for delivery in deliveries]


def _entry(delivery: Delivery, names: d.Names) -> Entry:
    what = delivery.focus.split("/", 1)[0]
    who = names.get(delivery.recipient) or delivery.recipient
    when = delivery.time or 0.0
    if delivery.status == "delivered":
        return Entry(when, "notification.delivered",
                     f"{what} change delivered to {who} ({delivery.endpoint})",
                     delivery.focus, when, GOOD)
    reason = f"HTTP {delivery.http_status}" if delivery.http_status else (delivery.error or "")
    return Entry(when, "notification.failed",
                 f"{what} change not delivered to {who} ({delivery.endpoint})"
                 + (f": {reason}" if reason else ""), delivery.focus, when, BAD,
                 (f"{delivery.attempts} attempts", *((delivery.error,) if delivery.error else ())))
