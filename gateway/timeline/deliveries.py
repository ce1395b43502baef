"""Notifications about the patient, delivered or failed, per recipient (gateway/sync).

Each delivery row of an event about the patient is one entry: the recipient is the
Subscription or care-team member Endpoint it was sent to, the reference is the version the
notification carried (the event's focus), the time when it was delivered or last tried.
A viewer limited to some organizations (README "Security") sees who was notified but not
the endpoint addresses or errors: those belong to the subscribers, not to the patient.
"""

from __future__ import annotations

from gateway.store.access import restricted
from gateway.timeline import describe as d
from gateway.timeline.entry import BAD, GOOD, Entry
from gateway.timeline.sources import Delivery


def delivery_entries(deliveries: list[Delivery], names: d.Names) -> list[Entry]:
    full = restricted() is None
    return [_entry(delivery, names, full) for delivery in deliveries]


def _entry(delivery: Delivery, names: d.Names, full: bool) -> Entry:
    what = delivery.focus.split("/", 1)[0]
    who = names.get(delivery.recipient) or delivery.recipient
    where = f" ({delivery.endpoint})" if full else ""
    when = delivery.time or 0.0
    if delivery.status == "delivered":
        return Entry(when, "notification.delivered", f"{what} change delivered to {who}{where}",
                     delivery.focus, when, GOOD)
    error = delivery.error if full else None
    reason = f"HTTP {delivery.http_status}" if delivery.http_status else (error or "")
    return Entry(when, "notification.failed",
                 f"{what} change not delivered to {who}{where}"
                 + (f": {reason}" if reason else ""), delivery.focus, when, BAD,
                 (f"{delivery.attempts} attempts", *((error,) if error else ())))
