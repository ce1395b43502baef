"""Every access leaves an AuditEvent (who, what, which patient, outcome), queryable by
administrators through the FHIR API; audit writes that fail are retried and reported."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gateway.auth.audit import Access, AuditTrail, build_event
from gateway.fhir.validate import validate_resource
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.store.writer import Writer
from tests.integration.auth_support import bearer, register, token_request
from tests.integration.sync_support import ReceiverServer, subscription, wait_for


def _events(http: TestClient, admin: dict[str, str], app: Any, **params: str) -> list[Any]:
    app.state.security.audit.drain()
    bundle = http.get("/fhir/AuditEvent", params={**params, "_count": "200"},
                      headers=admin).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _what(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]


@pytest.fixture
def admin(auth_app: Any, auth_http: TestClient) -> dict[str, str]:
    return bearer(auth_http, register(auth_app, "auditor", "system/*.cruds", admin=True))


def test_every_access_leaves_an_audit_event(auth_app: Any, auth_http: TestClient,
                                            admin: dict[str, str]) -> None:
    client = register(auth_app, "ehr-1", "system/Patient.cruds system/CarePlan.crs",
                      admin=True)
    headers = bearer(auth_http, client, "system/Patient.cruds system/CarePlan.crs")
    patient = auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                             headers=headers).json()["id"]
    plan = auth_http.post("/fhir/CarePlan", headers=headers, json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": f"Patient/{patient}"}}).json()["id"]
    auth_http.get(f"/fhir/CarePlan/{plan}", headers=headers)
    auth_http.get(f"/fhir/CarePlan?patient={patient}", headers=headers)
    auth_http.put(f"/fhir/Patient/{patient}", headers=headers,
                  json={"resourceType": "Patient", "id": patient, "active": True})
    auth_http.get("/fhir/CarePlan/unknown", headers=headers)
    auth_http.delete(f"/fhir/CarePlan/{plan}", headers=headers)  # no d: refused
    events = _events(auth_http, admin, auth_app, altid="ehr-1")
    seen = {(e["subtype"][0]["code"] if "subtype" in e else e["type"]["code"],
             e["outcome"]) for e in events}
    assert seen == {("110114", "0"), ("create", "0"), ("read", "0"), ("search", "0"),
                    ("update", "0"), ("read", "4"), ("delete", "4")}
    by_action = {(e["subtype"][0]["code"], e["outcome"]): e for e in events if "subtype" in e}
    read = by_action[("read", "0")]
    assert _what(read) == [f"CarePlan/{plan}", f"Patient/{patient}"]
    assert read["agent"][0]["who"]["identifier"]["value"] == "ehr-1"
    assert read["action"] == "R"
    creates = sorted(_what(e)[0] for e in events
                     if "subtype" in e and e["subtype"][0]["code"] == "create")
    assert creates == sorted([f"Patient/{patient}", f"CarePlan/{plan}"])
    assert _what(by_action[("search", "0")]) == [f"Patient/{patient}"]
    assert by_action[("delete", "4")]["outcomeDesc"].startswith("HTTP 403")
    for event in events:
        assert event["meta"]["versionId"] == "1"
        validate_resource(event)
    # Queryable by patient and by what was touched.
    about = _events(auth_http, admin, auth_app, patient=f"Patient/{patient}")
    assert {e["subtype"][0]["code"] for e in about} >= {"read", "search", "update"}
    assert len(_events(auth_http, admin, auth_app, entity=f"CarePlan/{plan}")) >= 2


def test_each_transaction_and_batch_entry_is_audited(auth_app: Any, auth_http: TestClient,
                                                      admin: dict[str, str]) -> None:
    """A transaction's writes and a batch's reads are accesses of their own: each leaves
    an AuditEvent naming what it touched, beside the one for the Bundle."""
    headers = bearer(auth_http, register(auth_app, "ehr-tx", "system/*.cruds", admin=True))
    patient_url = "urn:uuid:0c0e7c9e-7bb4-4d1b-8f4e-0e3b9c1f5a21"
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient_url, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient"}},
        {"request": {"method": "PUT", "url": "CarePlan/tx-plan"},
         "resource": {"resourceType": "CarePlan", "id": "tx-plan", "status": "active",
                      "intent": "plan", "subject": {"reference": patient_url}}}]}
    answer = auth_http.post("/fhir", json=transaction, headers=headers)
    assert answer.status_code == 200, answer.text
    patient = answer.json()["entry"][0]["response"]["location"].split("Patient/")[1]
    patient = patient.split("/")[0]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "CarePlan/tx-plan"}},
        {"request": {"method": "GET", "url": f"CarePlan?patient={patient}"}},
        {"request": {"method": "GET", "url": "CarePlan/absent"}}]}
    assert auth_http.post("/fhir", json=batch, headers=headers).status_code == 200
    events = _events(auth_http, admin, auth_app, altid="ehr-tx")
    entries = sorted((e["subtype"][0]["code"], e["outcome"], tuple(_what(e)))
                     for e in events if "Bundle entry" in e["outcomeDesc"])
    assert entries == sorted([
        ("create", "0", (f"Patient/{patient}",)),
        ("update", "0", ("CarePlan/tx-plan", f"Patient/{patient}")),
        ("read", "0", ("CarePlan/tx-plan", f"Patient/{patient}")),
        ("search", "0", (f"Patient/{patient}",)),
        ("read", "4", ("CarePlan/absent",))])
    bundles = [e for e in events if "Bundle entry" not in e["outcomeDesc"]
               and e.get("subtype", [{}])[0].get("code") == "transaction"]
    assert len(bundles) == 2


def test_each_delivery_is_audited(auth_app: Any, auth_http: TestClient,
                                   admin: dict[str, str], receiver: ReceiverServer) -> None:
    """Sending a patient's data to a subscriber is a disclosure: each attempt leaves an
    AuditEvent naming the Subscription, the endpoint, the resource, its patient and how
    the receiver answered."""
    client = register(auth_app, "ehr-sub", "system/*.cruds", admin=True)
    headers = bearer(auth_http, client)
    sub = auth_http.post("/fhir/Subscription", headers=headers,
                         json=subscription(receiver.url, "CarePlan"))
    assert sub.status_code == 201, sub.text
    sub_id = sub.json()["id"]
    patient = auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                             headers=headers).json()["id"]
    wait_for(lambda: receiver.receiver.accepted("handshake"), what="handshake")
    plan = auth_http.post("/fhir/CarePlan", headers=headers, json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": f"Patient/{patient}"}}).json()["id"]
    wait_for(lambda: receiver.receiver.accepted(), what="notification")

    def exports() -> list[dict[str, Any]]:
        return [e for e in _events(auth_http, admin, auth_app, type="110106")
                if e["agent"][0]["who"]["identifier"]["value"] == sub_id]

    found = wait_for(lambda: len(exports()) >= 2 and exports(), what="delivery audit")
    by_what = {_what(e)[0]: e for e in found}
    event = by_what[f"CarePlan/{plan}"]
    assert _what(event) == [f"CarePlan/{plan}", f"Patient/{patient}"]
    assert event["outcome"] == "0" and event["outcomeDesc"].startswith("HTTP 200")
    assert event["agent"][0]["network"] == {"address": receiver.url, "type": "5"}
    assert event["type"]["code"] == "110106"
    assert f"Subscription/{sub_id}" in by_what  # the handshake
    validate_resource(event)


def test_token_requests_are_audited_as_logins(auth_app: Any, auth_http: TestClient,
                                              admin: dict[str, str]) -> None:
    client = register(auth_app, "ehr-2", "system/*.rs")
    assertion = client.assertion()
    assert token_request(auth_http, assertion, "system/*.rs").status_code == 200
    assert token_request(auth_http, assertion, "system/*.rs").status_code == 401
    logins = _events(auth_http, admin, auth_app, altid="ehr-2")
    assert sorted((e["type"]["code"], e["outcome"]) for e in logins) == [
        ("110114", "0"), ("110114", "4")]
    assert any("invalid_client" in e["outcomeDesc"] for e in logins)


def test_audit_events_outlive_what_they_mention(auth_app: Any, auth_http: TestClient,
                                               admin: dict[str, str]) -> None:
    patient = auth_http.post("/fhir/Patient", json={"resourceType": "Patient"},
                             headers=admin).json()["id"]
    auth_http.get(f"/fhir/Patient/{patient}", headers=admin)
    auth_app.state.security.audit.drain()
    assert auth_http.delete(f"/fhir/Patient/{patient}", headers=admin).status_code == 200
    assert _events(auth_http, admin, auth_app, entity=f"Patient/{patient}")


def test_the_built_event_is_valid_r4() -> None:
    event = build_event(Access("c", "search", 200, "CarePlan", query="patient=1",
                               address="10.0.0.1"), "Patient/1")
    validate_resource(event)
    assert event["entity"][0]["query"]


def test_failed_audit_writes_are_retried_and_reported(database_url: str,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    database = Database(database_url)
    upgrade(database)
    writer = Writer(database)
    trail = AuditTrail(writer)
    with database.write() as connection:  # every write of a version now fails
        connection.execute(text("ALTER TABLE resource_version RENAME TO hidden_version"))
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.audit"):
            trail.record(Access("c", "read", 200, "Patient", "1"))
            trail.drain()
        assert trail.failed == 1
        assert caplog.text.count("audit write failed") == 3  # tried, retried twice, lost
    finally:
        writer.stop()
        with database.write() as connection:
            connection.execute(text("ALTER TABLE hidden_version RENAME TO resource_version"))
        database.dispose()
