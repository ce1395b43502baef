"""Outbound notifications on the wire (respx): method, URL, body, evidence headers, and how
each kind of failure is classified."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import respx

from gateway.sync import signing
from gateway.sync.notifications import build
from gateway.sync.queue import Job, Outcome
from gateway.sync.retry import ErrorKind
from gateway.sync.transport import send

ENDPOINT = "https://ehr.example.org/fhir"
NOTIFICATION = "0b0e6f6e-3b8e-4a53-9d43-2c5c0f8b1e01"
BODY = b'{"resourceType":"Encounter","id":"e1","status":"finished"}'


def _job(**changes: object) -> Job:
    job = Job(delivery_id=1, sid=1, kind="event", notification_id=NOTIFICATION, attempt=1,
              first_failure_at=None, subscription_id="s1", subscription_version=2,
              endpoint=ENDPOINT, payload=None, headers=[("Authorization", "Bearer xyz")],
              event_number=7, resource_type="Encounter", resource_id="e1", version_id=3,
              action="update", body=BODY)
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def _send(job: Job, secrets: list[str] | None = None) -> Outcome:
    async def run() -> Outcome:
        async with httpx.AsyncClient() as client:
            return await send(client, build(job, secrets or []), timeout=1.0)
    return asyncio.run(run())


@respx.mock
def test_no_payload_is_an_empty_post_with_evidence_headers() -> None:
    route = respx.post(ENDPOINT).mock(return_value=httpx.Response(200))
    outcome = _send(_job(), ["new", "old"])
    assert outcome.ok and outcome.http_status == 200 and outcome.latency_ms >= 0
    request = route.calls.last.request
    assert request.content == b""
    assert request.headers["authorization"] == "Bearer xyz"  # channel.header
    assert request.headers["x-gateway-notification-id"] == NOTIFICATION
    assert request.headers["x-gateway-event-number"] == "7"
    assert request.headers["x-gateway-focus"] == "Encounter/e1/_history/3"
    assert re.fullmatch(r"00-0b0e6f6e3b8e4a539d432c5c0f8b1e01-[0-9a-f]{16}-01",
                        request.headers["traceparent"])
    signature = request.headers["x-gateway-signature"]
    assert signature.count("v1=") == 2  # both secrets of a rotation
    assert signing.verify(signature, b"", "new") and signing.verify(signature, b"", "old")
    assert not signing.verify(signature, b"", "stranger")


@respx.mock
def test_payload_is_a_put_of_the_resource_version() -> None:
    route = respx.put(f"{ENDPOINT}/Encounter/e1").mock(return_value=httpx.Response(201))
    outcome = _send(_job(payload="application/fhir+json"), ["k"])
    assert outcome.ok
    request = route.calls.last.request
    assert request.content == BODY
    assert request.headers["content-type"] == "application/fhir+json"
    assert signing.verify(request.headers["x-gateway-signature"], BODY, "k")
    assert not signing.verify(request.headers["x-gateway-signature"], BODY + b" ", "k")


@respx.mock
def test_deletion_with_payload_is_a_delete() -> None:
    route = respx.delete(f"{ENDPOINT}/Encounter/e1").mock(return_value=httpx.Response(204))
    assert _send(_job(payload="application/fhir+json", action="delete", body=None)).ok
    assert route.called


@respx.mock
def test_handshake_is_marked() -> None:
    route = respx.post(ENDPOINT).mock(return_value=httpx.Response(204))
    assert _send(_job(kind="handshake", event_number=None)).ok
    headers = route.calls.last.request.headers
    assert headers["x-gateway-notification-type"] == "handshake"
    assert "x-gateway-event-number" not in headers
    assert "x-gateway-signature" not in headers  # no secret configured


def test_signature_is_over_timestamp_and_raw_body() -> None:
    headers = signing.signature_headers(["s"], 1700000000, b"{}")
    expected = signing.signature("s", 1700000000, b"{}")
    assert headers == {"X-Gateway-Signature": f"t=1700000000,v1={expected}",
                       "X-Gateway-Timestamp": "1700000000"}
    assert signing.signature_headers([], 1, b"") == {}


@pytest.mark.parametrize(("answer", "kind", "status"), [
    (httpx.Response(500, text="boom"), ErrorKind.SERVER, 500),
    (httpx.Response(503), ErrorKind.SERVER, 503),
    (httpx.Response(429), ErrorKind.SERVER, 429),
    (httpx.Response(400, text="bad"), ErrorKind.CLIENT, 400),
    (httpx.Response(410), ErrorKind.GONE, 410),
    (httpx.ConnectError("refused"), ErrorKind.TRANSPORT, None),
    (httpx.ReadTimeout("slow"), ErrorKind.TRANSPORT, None),
])
@respx.mock
def test_failures_are_classified(answer: httpx.Response | Exception, kind: ErrorKind,
                                 status: int | None) -> None:
    route = respx.post(ENDPOINT)
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    outcome = _send(_job())
    assert not outcome.ok
    assert outcome.kind is kind and outcome.http_status == status
    assert outcome.error and outcome.url == ENDPOINT
