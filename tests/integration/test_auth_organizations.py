"""Access by organization: a client acting for organization A sees the patients whose
CareTeam includes A or whose Encounters were at A, and their resources; others' answer 404
and are absent from searches, counts, includes, subscriptions and notifications. Admin
clients see everything."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.store.tables import sync_event_table, sync_subscription_table
from tests.integration.auth_support import bearer, register
from tests.integration.hl7v2_helpers import sample
from tests.integration.sync_support import wait_for


def _put(http: TestClient, headers: dict[str, str], resource: dict[str, Any]) -> None:
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    response = http.put(url, json=resource, headers=headers)
    assert response.status_code in (200, 201), response.text


def _plan(plan_id: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "id": plan_id, "status": "active", "intent": "plan",
            "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture
def world(auth_app: Any, auth_http: TestClient) -> dict[str, dict[str, str]]:
    """Patients pa (CareTeam with org-a), pb (Encounter at org-b), pc (neither), a plan
    each; headers for clients of org A, org B and an admin."""
    admin = bearer(auth_http, register(auth_app, "admin", "system/*.cruds", admin=True))
    for org in ("org-a", "org-b"):
        _put(auth_http, admin, {"resourceType": "Organization", "id": org, "name": org})
    for patient in ("pa", "pb", "pc"):
        _put(auth_http, admin, {"resourceType": "Patient", "id": patient})
        _put(auth_http, admin, _plan(f"plan-{patient}", patient))
    _put(auth_http, admin, {"resourceType": "CareTeam", "id": "team-a",
                            "subject": {"reference": "Patient/pa"},
                            "participant": [{"member": {"reference": "Organization/org-a"}}]})
    _put(auth_http, admin, {"resourceType": "Encounter", "id": "enc-b", "status": "finished",
                            "class": {"system": "http://terminology.hl7.org/CodeSystem/"
                                                "v3-ActCode", "code": "IMP"},
                            "subject": {"reference": "Patient/pb"},
                            "serviceProvider": {"reference": "Organization/org-b"}})
    a = bearer(auth_http, register(auth_app, "client-a", "system/*.cruds",
                                   organizations=("org-a",)))
    b = bearer(auth_http, register(auth_app, "client-b", "system/*.cruds",
                                   organizations=("org-b",)))
    return {"a": a, "b": b, "admin": admin}


def _ids(bundle: dict[str, Any], mode: str | None = None) -> list[str]:
    return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}"
                  for e in bundle.get("entry", [])
                  if mode is None or e.get("search", {}).get("mode") == mode)


def test_reads_answer_404_outside_the_organization(auth_http: TestClient,
                                                   world: dict[str, dict[str, str]]) -> None:
    a, b = world["a"], world["b"]
    assert auth_http.get("/fhir/Patient/pa", headers=a).status_code == 200
    assert auth_http.get("/fhir/CarePlan/plan-pa", headers=a).status_code == 200
    for url in ("/fhir/Patient/pb", "/fhir/Patient/pc", "/fhir/CarePlan/plan-pb",
                "/fhir/CarePlan/plan-pb/_history/1", "/fhir/CarePlan/plan-pb/_history",
                "/fhir/Encounter/enc-b"):
        answer = auth_http.get(url, headers=a)
        assert answer.status_code == 404, url
        assert answer.json()["issue"][0]["code"] == "not-found"
    assert auth_http.get("/fhir/Patient/pb", headers=b).status_code == 200
    assert auth_http.get("/fhir/Patient/pa", headers=b).status_code == 404
    # Resources of no patient are shared directory data.
    assert auth_http.get("/fhir/Organization/org-b", headers=a).status_code == 200
    for url in ("/fhir/Patient/pb", "/fhir/Patient/pc", "/fhir/CarePlan/plan-pb"):
        assert auth_http.get(url, headers=world["admin"]).status_code == 200


def test_batch_reads_answer_404_outside_the_organization(
        auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pa"}},
        {"request": {"method": "GET", "url": "Patient/pb"}}]}
    batch["entry"].append({"request": {"method": "GET", "url": "Patient/nobody"}})
    answer = auth_http.post("/fhir", json=batch, headers=world["a"])
    assert answer.status_code == 200, answer.text
    own, others, unknown = answer.json()["entry"]
    assert own["response"]["status"].startswith("200")
    # B's patient answers exactly as a patient that does not exist: nothing leaks.
    assert others["response"]["status"] == unknown["response"]["status"] == "404"
    assert [i["code"] for i in others["response"]["outcome"]["issue"]] == ["not-found"]
    deleted = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "CarePlan/plan-b-old"}}]}
    _put(auth_http, world["admin"], _plan("plan-b-old", "pb"))
    assert auth_http.delete("/fhir/CarePlan/plan-b-old", headers=world["admin"]
                            ).status_code in (200, 204)
    entry = auth_http.post("/fhir", json=deleted, headers=world["a"]).json()["entry"][0]
    assert entry["response"]["status"] == "404"  # not 410: never known to A
    transaction = {**batch, "type": "transaction", "entry": batch["entry"][1:2]}
    assert auth_http.post("/fhir", json=transaction, headers=world["a"]).status_code == 404


def test_searches_counts_and_includes_leave_others_out(auth_http: TestClient,
                                                       world: dict[str, dict[str, str]]) -> None:
    a = world["a"]
    patients = auth_http.get("/fhir/Patient", headers=a).json()
    assert _ids(patients) == ["Patient/pa"]
    assert patients["total"] == 1
    count = auth_http.get("/fhir/CarePlan?_summary=count", headers=a).json()
    assert count["total"] == 1
    paged = auth_http.get("/fhir/CarePlan?_count=1", headers=a).json()
    assert _ids(paged) == ["CarePlan/plan-pa"]
    assert not any(link["relation"] == "next" for link in paged["link"])
    assert _ids(auth_http.get("/fhir/CarePlan?subject=Patient/pb", headers=a).json()) == []
    included = auth_http.get("/fhir/CareTeam?_include=CareTeam:subject"
                             "&_revinclude=CarePlan:subject", headers=a).json()
    assert _ids(included) == ["CareTeam/team-a", "Patient/pa"]
    rev = auth_http.get("/fhir/Patient?_revinclude=CarePlan:subject"
                        "&_revinclude=Encounter:subject", headers=a).json()
    assert _ids(rev) == ["CarePlan/plan-pa", "Patient/pa"]
    # B's patient reached from an organization: the include stops at the boundary.
    orgs = auth_http.get("/fhir/Organization?_revinclude=Encounter:service-provider",
                         headers=a).json()
    assert _ids(orgs) == ["Organization/org-a", "Organization/org-b"]
    admin = auth_http.get("/fhir/Patient", headers=world["admin"]).json()
    assert admin["total"] == 3


def test_others_resources_cannot_be_changed(auth_http: TestClient,
                                            world: dict[str, dict[str, str]]) -> None:
    a = world["a"]
    changed = {**_plan("plan-pb", "pb"), "status": "revoked"}
    assert auth_http.put("/fhir/CarePlan/plan-pb", json=changed, headers=a).status_code == 404
    assert auth_http.delete("/fhir/CarePlan/plan-pb", headers=a).status_code == 404
    still = auth_http.get("/fhir/CarePlan/plan-pb", headers=world["admin"]).json()
    assert still["status"] == "active"


def test_an_encounter_at_the_organization_opens_the_patient(auth_http: TestClient,
                                                            world: dict[str, dict[str, str]]
                                                            ) -> None:
    a = world["a"]
    assert auth_http.get("/fhir/Patient/pc", headers=a).status_code == 404
    _put(auth_http, world["admin"], {
        "resourceType": "Encounter", "id": "enc-c", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                  "code": "EMER"},
        "subject": {"reference": "Patient/pc"},
        "serviceProvider": {"reference": "Organization/org-a"}})
    assert auth_http.get("/fhir/Patient/pc", headers=a).status_code == 200
    assert auth_http.get("/fhir/CarePlan/plan-pc", headers=a).status_code == 200


def test_subscriptions_are_private_and_notified_only_of_visible_patients(
        auth_app: Any, auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    a, b = world["a"], world["b"]
    created = auth_http.post("/fhir/Subscription", headers=a, json={
        "resourceType": "Subscription", "status": "requested", "reason": "plans",
        "criteria": "CarePlan", "channel": {"type": "rest-hook",
                                            "endpoint": "http://127.0.0.1:9/hook"}})
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    assert auth_http.get(f"/fhir/Subscription/{sub_id}", headers=a).status_code == 200
    assert auth_http.get(f"/fhir/Subscription/{sub_id}", headers=b).status_code == 404
    assert _ids(auth_http.get("/fhir/Subscription", headers=b).json()) == []
    narrow = auth_http.post("/fhir/Subscription", headers=a, json={
        "resourceType": "Subscription", "status": "requested", "reason": "plans",
        "criteria": "CarePlan?subject=Patient/pb",
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"}})
    assert narrow.status_code == 201
    admin = world["admin"]
    _put(auth_http, admin, {**_plan("plan-pb", "pb"), "status": "on-hold"})
    _put(auth_http, admin, {**_plan("plan-pa", "pa"), "status": "on-hold"})
    database = auth_app.state.database

    def events() -> list[tuple[str, str]]:
        with database.engine.connect() as connection:
            rows = connection.execute(
                select(sync_subscription_table.c.resource_id, sync_event_table.c.id)
                .join(sync_event_table, sync_event_table.c.sid == sync_subscription_table.c.sid))
            return sorted((row[0], row[1]) for row in rows)

    wait_for(lambda: (sub_id, "plan-pa") in events(), what="plan-pa event")
    assert events() == [(sub_id, "plan-pa")]


def test_conditional_and_transaction_writes_cannot_reach_others(
        auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    a = world["a"]
    changed = {**_plan("plan-pb", "pb"), "status": "revoked"}
    assert auth_http.put("/fhir/CarePlan?_id=plan-pb", json=changed,
                         headers=a).status_code == 404
    deleted = auth_http.delete("/fhir/CarePlan?_id=plan-pb", headers=a)
    assert deleted.status_code == 200
    assert "nothing was deleted" in deleted.text
    for method in ("PUT", "DELETE"):
        entry: dict[str, Any] = {"request": {"method": method, "url": "CarePlan/plan-pb"}}
        if method == "PUT":
            entry["resource"] = changed
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        assert auth_http.post("/fhir", json=bundle, headers=a).status_code == 404
    duplicate = auth_http.post("/fhir/CarePlan", json=_plan("x", "pa"), headers={
        **a, "If-None-Exist": "_id=plan-pb"})
    assert duplicate.status_code == 201  # B's plan does not match: a new one is made
    still = auth_http.get("/fhir/CarePlan/plan-pb", headers=world["admin"]).json()
    assert still["status"] == "active"


def _encounter(encounter_id: str, patient: str, org: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": encounter_id, "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
            "serviceProvider": {"reference": f"Organization/{org}"}}


def test_writing_at_the_organization_does_not_open_another_patient(
        auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    """An Encounter or CareTeam naming the client's organization would make the patient
    visible to it: a reference to a patient it cannot see answers as a reference to no
    patient at all, so neither access nor existence leaks."""
    a = world["a"]
    for patient in ("pb", "pc", "nobody"):
        answer = auth_http.put(f"/fhir/Encounter/enc-{patient}-a",
                               json=_encounter(f"enc-{patient}-a", patient, "org-a"),
                               headers=a)
        assert answer.status_code == 422, (patient, answer.text)
        issue = answer.json()["issue"][0]
        assert issue["diagnostics"].startswith(f"The reference 'Patient/{patient}' does "
                                               "not resolve"), issue
    team = {"resourceType": "CareTeam", "subject": {"reference": "Patient/pc"},
            "participant": [{"member": {"reference": "Organization/org-a"}}]}
    assert auth_http.post("/fhir/CareTeam", json=team, headers=a).status_code == 422
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Encounter/enc-c-a"},
         "resource": _encounter("enc-c-a", "pc", "org-a")}]}
    assert auth_http.post("/fhir", json=transaction, headers=a).status_code == 422
    for url in ("/fhir/Patient/pc", "/fhir/Patient/pb", "/fhir/CarePlan/plan-pc"):
        assert auth_http.get(url, headers=a).status_code == 404, url
    # Its own patient: the Encounter is written and links as before.
    assert auth_http.put("/fhir/Encounter/enc-a", json=_encounter("enc-a", "pa", "org-a"),
                         headers=a).status_code == 201


def test_a_new_patient_comes_with_what_links_it(auth_http: TestClient,
                                                world: dict[str, dict[str, str]]) -> None:
    """A client of an organization registers a new patient in one transaction with the
    Encounter at its organization (in either order), and then sees it."""
    a = world["a"]
    patient_url = "urn:uuid:6a3e1ab2-0d3c-4f7e-9a53-2b1c7a3e0f11"
    encounter = _encounter("enc-new", "x", "org-a")
    encounter["subject"] = {"reference": patient_url}
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Encounter/enc-new"}, "resource": encounter},
        {"fullUrl": patient_url, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "name": [{"family": "New"}]}}]}
    answer = auth_http.post("/fhir", json=transaction, headers=a)
    assert answer.status_code == 200, answer.text
    location = answer.json()["entry"][1]["response"]["location"]
    patient_id = location.split("Patient/")[1].split("/")[0]
    assert auth_http.get(f"/fhir/Patient/{patient_id}", headers=a).status_code == 200
    assert auth_http.get(f"/fhir/Patient/{patient_id}", headers=world["b"]).status_code == 404


def test_writes_naming_others_resources_by_any_route_answer_404(
        auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    """Whichever way a write names its target (URL, a conditional update falling back on
    the body's id, a transaction entry), and whether or not that resource was deleted, a
    resource the client cannot see is unknown to it."""
    a, admin = world["a"], world["admin"]
    changed = {**_plan("plan-pb", "pb"), "status": "revoked"}
    answer = auth_http.put("/fhir/CarePlan?identifier=urn:x|none", json=changed, headers=a)
    assert answer.status_code == 404, answer.text
    conditional = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "CarePlan?identifier=urn:x|none"},
         "resource": changed}]}
    assert auth_http.post("/fhir", json=conditional, headers=a).status_code == 404
    assert auth_http.get("/fhir/CarePlan/plan-pb", headers=admin).json()["status"] == "active"
    _put(auth_http, admin, _plan("plan-b-old", "pb"))
    gone = auth_http.delete("/fhir/CarePlan/plan-b-old", headers=admin)
    assert gone.status_code in (200, 204), gone.text
    for url in ("/fhir/CarePlan/plan-b-old", "/fhir/CarePlan/plan-b-old/_history/2"):
        answer = auth_http.get(url, headers=a)
        assert answer.status_code == 404, (url, answer.text)  # not 410: never known to A
    assert auth_http.get("/fhir/CarePlan/plan-b-old", headers=admin).status_code == 410
    revived = _plan("plan-b-old", "pa")
    assert auth_http.put("/fhir/CarePlan/plan-b-old", json=revived, headers=a
                         ).status_code == 404
    assert auth_http.delete("/fhir/CarePlan/plan-b-old", headers=a).status_code == 404
    assert auth_http.get("/fhir/CarePlan/plan-b-old", headers=admin).status_code == 410


def test_versions_are_judged_by_their_own_patient(auth_http: TestClient,
                                                  world: dict[str, dict[str, str]]) -> None:
    """A plan written for B's patient and then moved to A's shows A only the versions
    that belonged to A's patient."""
    a, admin = world["a"], world["admin"]
    _put(auth_http, admin, _plan("plan-moved", "pb"))
    _put(auth_http, admin, {**_plan("plan-moved", "pa"), "status": "on-hold"})
    assert auth_http.get("/fhir/CarePlan/plan-moved", headers=a).status_code == 200
    assert auth_http.get("/fhir/CarePlan/plan-moved/_history/2", headers=a).status_code == 200
    assert auth_http.get("/fhir/CarePlan/plan-moved/_history/1", headers=a).status_code == 404
    history = auth_http.get("/fhir/CarePlan/plan-moved/_history", headers=a).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2"]
    assert history["total"] == 1
    full = auth_http.get("/fhir/CarePlan/plan-moved/_history", headers=admin).json()
    assert full["total"] == 2
    assert auth_http.get("/fhir/CarePlan/plan-moved/_history/1", headers=world["b"]
                         ).status_code == 404  # B cannot see the current version


def test_the_audit_log_is_not_reached_through_includes(
        auth_app: Any, auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    a, admin = world["a"], world["admin"]
    assert auth_http.get("/fhir/Patient/pa", headers=a).status_code == 200
    auth_app.state.security.audit.drain()
    url = "/fhir/Patient?_id=pa&_revinclude=AuditEvent:entity&_revinclude=AuditEvent:patient"
    seen_by_admin = auth_http.get(url, headers=admin).json()
    assert any(e["resource"]["resourceType"] == "AuditEvent"
               for e in seen_by_admin["entry"])
    assert _ids(auth_http.get(url, headers=a).json()) == ["Patient/pa"]


def test_an_inbound_message_finds_the_patient_its_sender_cannot_see_yet(
        auth_http: TestClient, world: dict[str, dict[str, str]]) -> None:
    """An ADT feed is matched against the whole store: the second hospital's admission of
    a patient the gateway knows links to that patient instead of creating another."""
    media = {"Content-Type": "x-application/hl7-v2+er7"}
    first = auth_http.post("/hl7v2", content=sample("north_a01_v25"),
                           headers={**media, **world["admin"]})
    assert "MSA|AA" in first.text, first.text
    second = sample("north_a01_v25", {"N-0001": "N-0002", "V20240001": "V20240002"})
    answer = auth_http.post("/hl7v2", content=second, headers={**media, **world["a"]})
    assert "MSA|AA" in answer.text, answer.text
    patients = auth_http.get("/fhir/Patient?identifier=N100234",
                             headers=world["admin"]).json()
    assert patients["total"] == 1
    encounters = auth_http.get("/fhir/Encounter?identifier=V20240002",
                               headers=world["admin"]).json()
    subject = encounters["entry"][0]["resource"]["subject"]["reference"]
    assert subject == f"Patient/{patients['entry'][0]['resource']['id']}"
