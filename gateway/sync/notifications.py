"""What goes on the wire for one classic R4 rest-hook notification.

R4 subscription.html#2.46.7.1 (channel rest-hook): without ``channel.payload`` the
notification is a POST with no body to ``channel.endpoint``; with a payload the resource is
sent as an update, ``PUT [endpoint]/[type]/[id]`` (a deletion as ``DELETE``), exactly as a
FHIR client would write it (HAPI FHIR does the same). ``channel.header`` values are sent as
HTTP headers. The gateway adds its evidence headers (``signing.py``) and a handshake is a
POST with no body marked ``X-Gateway-Notification-Type: handshake``.

Topic-based Subscriptions (Backport IG) always get a POST of a notification Bundle
(``backport.py``): handshake, heartbeat or event-notification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from gateway import __version__
from gateway.sync import signing
from gateway.sync.backport import Event, Subscriber, notification_bundle
from gateway.sync.destinations import destination_kind
from gateway.sync.queue import Job

FHIR_JSON = "application/fhir+json"


@dataclass
class Outgoing:
    method: str
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


KINDS = {"handshake": "handshake", "heartbeat": "heartbeat", "event": "event-notification"}


def build(job: Job, secrets: list[str], now: float | None = None, base: str = "") -> Outgoing:
    """The HTTP request for one attempt of one notification."""
    outgoing = _bundle_request(job, base) if job.topic else _request(job)
    outgoing.headers.update(_evidence(job, outgoing.body, int(now or time.time()), secrets))
    return outgoing


def _request(job: Job) -> Outgoing:
    headers = dict(job.headers)
    if job.kind == "handshake" or not job.payload:
        return Outgoing("POST", job.endpoint, b"", headers)
    url = f"{job.endpoint.rstrip('/')}/{job.resource_type}/{job.resource_id}"
    if job.action == "delete":
        return Outgoing("DELETE", url, b"", headers)
    headers["Content-Type"] = FHIR_JSON
    return Outgoing("PUT", url, job.body or b"", headers)


def _bundle_request(job: Job, base: str) -> Outgoing:
    assert job.topic is not None
    sub = Subscriber(job.subscription_id, job.topic, job.status, job.events_since,
                     job.content or "id-only", _kind(job))
    events = []
    if job.kind == "event" and job.event_number is not None:
        assert job.resource_type and job.resource_id and job.version_id and job.action
        events.append(Event(job.event_number, job.event_time or time.time(),
                            job.resource_type, job.resource_id, job.version_id, job.action,
                            job.patient, job.body))
    bundle = notification_bundle(sub, KINDS[job.kind], events, base,
                                 bundle_id=job.notification_id)
    headers = dict(job.headers)
    headers["Content-Type"] = FHIR_JSON
    return Outgoing("POST", job.endpoint, orjson.dumps(bundle), headers)


def _kind(job: Job) -> str:
    """Whom a notification is for: a Subscription, an Endpoint reached by care-team
    routing, or a partner."""
    return destination_kind(job.topic)


def evidence(job: Job, body: bytes, secrets: list[str]) -> dict[str, str]:
    """The gateway's evidence headers (notification id, signature, traceparent) for any
    request it sends for a notification, whatever its format."""
    return _evidence(job, body, int(time.time()), secrets)


def _evidence(job: Job, body: bytes, timestamp: int, secrets: list[str]) -> dict[str, str]:
    headers = {
        "User-Agent": f"fhir-care-gateway/{__version__}",
        "X-Gateway-Notification-Id": job.notification_id,
        "X-Gateway-Notification-Type": KINDS[job.kind],
        "X-Gateway-Subscription": f"{_kind(job)}/{job.subscription_id}",
        "traceparent": signing.traceparent(job.notification_id),
    }
    if job.event_number is not None:
        headers["X-Gateway-Event-Number"] = str(job.event_number)
        headers["X-Gateway-Focus"] = f"{job.resource_type}/{job.resource_id}" \
                                     f"/_history/{job.version_id}"
    headers.update(signing.signature_headers(secrets, timestamp, body))
    return headers
