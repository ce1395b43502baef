"""Each scope allows exactly what it names (SMART v2 ``cruds``, v1 ``read``/``write``), on
every FHIR interaction, each transaction entry, Subscriptions (read access to what they
watch), HL7 v2 over HTTP and the audit log (administrators only)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.auth_support import bearer, register
from tests.integration.hl7v2_helpers import sample

_ids = itertools.count()
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def token(auth_app: Any, auth_http: TestClient) -> Headers:
    """Headers with a token holding exactly ``scope`` for a new (admin) client."""

    def make(scope: str, *, admin: bool = True) -> dict[str, str]:
        client = register(auth_app, f"client-{next(_ids)}", scope, admin=admin)
        return bearer(auth_http, client, scope)

    return make


@pytest.fixture
def patient(auth_http: TestClient, token: Headers) -> str:
    created = auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                             headers=token("system/Patient.c"))
    assert created.status_code == 201
    return str(created.json()["id"])


def _everything_but(resource_type: str, letter: str) -> str:
    return f"system/{resource_type}.{''.join(c for c in 'cruds' if c != letter)} " \
           "system/Subscription.cruds"


CASES: list[tuple[str, str, str, Callable[[str], dict[str, Any]]]] = [
    # (interaction, resource type, permission, request builder from a patient id)
    ("read", "Patient", "r", lambda p: {"method": "GET", "url": f"/fhir/Patient/{p}"}),
    ("vread", "Patient", "r",
     lambda p: {"method": "GET", "url": f"/fhir/Patient/{p}/_history/1"}),
    ("instance history", "Patient", "r",
     lambda p: {"method": "GET", "url": f"/fhir/Patient/{p}/_history"}),
    ("search", "Patient", "s", lambda p: {"method": "GET", "url": f"/fhir/Patient?_id={p}"}),
    ("search by POST", "Patient", "s",
     lambda p: {"method": "POST", "url": "/fhir/Patient/_search", "data": {"_id": p}}),
    ("type history", "Patient", "s", lambda p: {"method": "GET", "url": "/fhir/Patient/_history"}),
    ("create", "Patient", "c",
     lambda p: {"method": "POST", "url": "/fhir/Patient", "json": {"resourceType": "Patient"}}),
    ("update", "Patient", "u", lambda p: {
        "method": "PUT", "url": f"/fhir/Patient/{p}",
        "json": {"resourceType": "Patient", "id": p, "active": True}}),
    ("conditional update", "Patient", "u", lambda p: {
        "method": "PUT", "url": f"/fhir/Patient?_id={p}",
        "json": {"resourceType": "Patient", "id": p, "active": False}}),
    ("delete", "Patient", "d", lambda p: {"method": "DELETE", "url": f"/fhir/Patient/{p}"}),
    ("transaction entry", "Patient", "c", lambda p: {"method": "POST", "url": "/fhir", "json": {
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}}]}}),
    ("batch entry", "Patient", "r", lambda p: {"method": "POST", "url": "/fhir", "json": {
        "resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"Patient/{p}"}}]}}),
    ("subscription on Encounters", "Encounter", "r", lambda p: {
        "method": "POST", "url": "/fhir/Subscription", "json": {
            "resourceType": "Subscription", "status": "requested", "reason": "test",
            "criteria": f"Encounter?patient=Patient/{p}",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"}}}),
]


@pytest.mark.parametrize(("name", "resource_type", "letter", "build"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_named_permission_allows_and_its_absence_forbids(
        auth_http: TestClient, token: Headers, patient: str, name: str, resource_type: str,
        letter: str, build: Callable[[str], dict[str, Any]]) -> None:
    request = build(patient)
    extra = " system/Subscription.c system/Encounter.rs" if resource_type == "Encounter" \
        else (" system/Subscription.c" if name.startswith("subscription") else "")
    refused = auth_http.request(**request, headers=token(_everything_but(resource_type,
                                                                            letter)))
    assert refused.status_code == 403, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    allowed = auth_http.request(**build(patient), headers=token(
        f"system/{resource_type}.{letter}{extra}"))
    assert allowed.status_code < 400, allowed.text


def test_v1_read_and_write_scopes(auth_http: TestClient, token: Headers, patient: str) -> None:
    read = token("system/Patient.read")
    assert auth_http.get(f"/fhir/Patient/{patient}", headers=read).status_code == 200
    assert auth_http.get("/fhir/Patient", headers=read).status_code == 200
    assert auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers=read).status_code == 403
    write = token("system/Patient.write")
    assert auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers=write).status_code == 201
    assert auth_http.get(f"/fhir/Patient/{patient}", headers=write).status_code == 403


def test_a_scope_on_one_type_gives_nothing_on_another(auth_http: TestClient,
                                                     token: Headers) -> None:
    headers = token("system/CarePlan.cruds")
    assert auth_http.get("/fhir/Patient", headers=headers).status_code == 403
    assert auth_http.get("/fhir/CarePlan", headers=headers).status_code == 200


def test_includes_only_bring_types_the_client_may_read(auth_http: TestClient, token: Headers,
                                                      patient: str) -> None:
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": f"Patient/{patient}"}}
    assert auth_http.post("/fhir/CarePlan", json=plan,
                          headers=token("system/CarePlan.c")).status_code == 201
    url = "/fhir/CarePlan?_include=CarePlan:subject"
    narrow = auth_http.get(url, headers=token("system/CarePlan.rs")).json()
    assert [e["resource"]["resourceType"] for e in narrow["entry"]] == ["CarePlan"]
    wide = auth_http.get(url, headers=token("system/CarePlan.rs system/Patient.r")).json()
    assert sorted(e["resource"]["resourceType"] for e in wide["entry"]) == ["CarePlan",
                                                                            "Patient"]


def test_hl7v2_over_http_needs_write_scopes(auth_http: TestClient, token: Headers) -> None:
    message = sample("north_a01_v25")
    media = {"Content-Type": "x-application/hl7-v2+er7"}
    refused = auth_http.post("/hl7v2", content=message,
                             headers={**media, **token("system/*.rs")})
    assert refused.status_code == 403
    writer = token("system/Patient.cu system/Encounter.cu system/Organization.cu "
                   "system/Practitioner.cu system/Location.cu")
    accepted = auth_http.post("/hl7v2", content=message, headers={**media, **writer})
    assert accepted.status_code == 200
    assert "MSA|AA" in accepted.text


def test_the_audit_log_and_message_store_are_for_administrators(auth_http: TestClient,
                                                                token: Headers) -> None:
    ordinary = token("system/*.cruds", admin=False)
    assert auth_http.get("/fhir/AuditEvent", headers=ordinary).status_code == 403
    assert auth_http.get("/hl7v2/messages", headers=ordinary).status_code == 403
    assert auth_http.get("/sync/deliveries", headers=ordinary).status_code == 403
    admin = token("system/*.cruds")
    assert auth_http.get("/fhir/AuditEvent", headers=admin).status_code == 200
    assert auth_http.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"},
                          headers=admin).status_code == 403
    assert auth_http.get("/hl7v2/messages", headers=admin).status_code == 200


def test_transactions_cannot_write_or_slip_past_the_audit_log(auth_http: TestClient,
                                                              token: Headers) -> None:
    def bundle(method: str, url: str, resource: dict[str, Any] | None = None) -> Any:
        entry: dict[str, Any] = {"request": {"method": method, "url": url}}
        if resource:
            entry["resource"] = resource
        return {"resourceType": "Bundle", "type": "batch", "entry": [entry]}

    admin = token("system/*.cruds")
    forged = bundle("POST", "AuditEvent", {"resourceType": "AuditEvent"})
    refused = auth_http.post("/fhir", json=forged, headers=admin)
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    ordinary = token("system/*.cruds", admin=False)
    assert auth_http.post("/fhir", json=bundle("GET", "AuditEvent"),
                          headers=ordinary).status_code == 403
    assert auth_http.post("/fhir", json=bundle("GET", "AuditEvent"),
                          headers=admin).status_code == 200
