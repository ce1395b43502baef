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
    answer = auth_http.post("/fhir", json=batch, headers=world["a"])
    assert answer.status_code == 404, answer.text
    assert answer.json()["issue"][0]["code"] == "not-found"
    batch["entry"] = batch["entry"][:1]
    assert auth_http.post("/fhir", json=batch, headers=world["a"]).status_code == 200


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
