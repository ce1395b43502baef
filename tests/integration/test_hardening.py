"""Hostile-input limits: body, query and HL7 message sizes, ``_count`` and include depth
caps, per-client rate limits (429 + Retry-After), security headers, CORS off by default."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.ingest.mllp import frame
from gateway.ingest.setup import build_ingest
from tests.integration.auth_support import bearer, register
from tests.integration.hl7v2_helpers import Listener, ack_of, sample


def test_oversized_bodies_and_queries_are_refused(client: TestClient, app: Any) -> None:
    limit = app.state.settings.max_body_bytes
    big = b'{"resourceType": "Patient", "text": "' + b"x" * limit + b'"}'
    answer = client.post("/fhir/Patient", content=big,
                         headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 413
    assert answer.json()["issue"][0]["code"] == "too-costly"

    def chunks() -> Any:
        yield b'{"resourceType": "Patient", "text": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    chunked = client.post("/fhir/Patient", content=chunks(),
                          headers={"Content-Type": "application/fhir+json"})
    assert chunked.status_code == 413
    assert client.get("/fhir/Patient?name=" + "a" * 9000).status_code == 414
    many = "&".join(f"name=a{i}" for i in range(101))
    assert client.get(f"/fhir/Patient?{many}").json()["issue"][0]["code"] == "too-costly"


def test_hl7v2_over_http_has_its_own_size_limit(client: TestClient, app: Any) -> None:
    limit = app.state.settings.max_hl7_bytes
    message = sample("north_a01_v25") + b"NTE|1||" + b"x" * limit + b"\r"
    answer = client.post("/hl7v2", content=message,
                         headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert answer.status_code == 413


def test_an_oversized_mllp_frame_closes_only_its_connection(app: Any,
                                                            client: TestClient) -> None:
    with Listener(build_ingest(app.state.settings, app.state.database,
                               app.state.fhir)) as listener:
        listener.server.max_frame = 4096
        with listener.connect() as hostile:
            hostile.send_raw(frame(sample("north_a01_v25") + b"x" * 8192))
            assert hostile.sock.recv(1024) == b""  # closed
        with listener.connect() as sender:
            assert ack_of(sender.send(sample("north_a01_v25")))["MSA"][0][1][0] == "AA"


def test_count_is_capped(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"max_page_size": 2}))
    try:
        with TestClient(application) as http:
            for _ in range(3):
                http.post("/fhir/Patient", json={"resourceType": "Patient"})
            page = http.get("/fhir/Patient?_count=100000000").json()
            assert len(page["entry"]) == 2
            assert any(link["relation"] == "next" for link in page["link"])
    finally:
        application.state.database.dispose()


def test_include_iteration_stops_after_four_rounds(client: TestClient) -> None:
    for number in reversed(range(7)):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": f"p{number}"}
        if number < 6:
            patient["link"] = [{"other": {"reference": f"Patient/p{number + 1}"},
                                "type": "seealso"}]
        assert client.put(f"/fhir/Patient/p{number}", json=patient).status_code == 201
    bundle = client.get("/fhir/Patient?_id=p0&_include:iterate=Patient:link").json()
    found = sorted(e["resource"]["id"] for e in bundle["entry"])
    assert found == ["p0", "p1", "p2", "p3", "p4"]


def test_security_headers_and_no_cors_by_default(client: TestClient) -> None:
    answer = client.get("/fhir/metadata")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    preflight = client.options("/fhir/Patient", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    docs = client.get("/docs")
    assert "content-security-policy" not in docs.headers  # the docs page loads scripts


def test_cors_when_configured(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={
        "cors_origins": ["https://care.example"]}))
    try:
        with TestClient(application) as http:
            preflight = http.options("/fhir/Patient", headers={
                "Origin": "https://care.example", "Access-Control-Request-Method": "GET"})
            assert preflight.headers["access-control-allow-origin"] == "https://care.example"
    finally:
        application.state.database.dispose()


@pytest.fixture
def limited_app(settings: Settings) -> Any:
    application = create_app(settings.model_copy(update={
        "auth": "smart", "rate_limit_per_second": 0.5, "rate_limit_burst": 3}))
    yield application
    application.state.database.dispose()


def test_a_client_over_its_rate_limit_gets_429_with_retry_after(limited_app: Any) -> None:
    with TestClient(limited_app, base_url="http://testserver") as http:
        headers = bearer(http, register(limited_app, "busy", "system/*.rs", admin=True),
                         "system/*.rs")
        other = bearer(http, register(limited_app, "calm", "system/*.rs", admin=True),
                       "system/*.rs")
        statuses = [http.get("/fhir/Patient", headers=headers).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = http.get("/fhir/Patient", headers=headers)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["issue"][0]["code"] == "throttled"
        assert http.get("/fhir/Patient", headers=other).status_code == 200


def test_a_flood_of_refusals_is_audited_counted_not_one_by_one(limited_app: Any) -> None:
    """Rate-limited requests still leave evidence, but a client hammering the gateway
    cannot make it write one AuditEvent per refused request."""
    with TestClient(limited_app, base_url="http://testserver") as http:
        flood = bearer(http, register(limited_app, "flood", "system/*.rs", admin=True),
                       "system/*.rs")
        statuses = [http.get("/fhir/Patient", headers=flood).status_code for _ in range(40)]
        assert statuses.count(429) >= 30
        limited_app.state.security.audit.drain()
        auditor = bearer(http, register(limited_app, "auditor", "system/*.rs", admin=True),
                         "system/*.rs")
        events = http.get("/fhir/AuditEvent", params={"outcome": "4", "_count": "100"},
                          headers=auditor).json()
        refusals = [e["resource"] for e in events.get("entry", [])
                    if e["resource"]["agent"][0]["altId"] == "flood"]
        assert len(refusals) == 1
        assert "rate limited (1 request refused" in refusals[0]["outcomeDesc"]
