"""Transaction and batch Bundles (R4 http.html#transaction)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _patient(family: str = "Nakamura", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}], **extra}


def _bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _post(full_url: str, resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], **request}}


def _count(client: TestClient, resource_type: str) -> int:
    return client.get(f"/fhir/{resource_type}", params={"_summary": "count"}).json()["total"]


def test_transaction_resolves_urn_uuid_references(client: TestClient) -> None:
    patient_url = "urn:uuid:7d4a2a5e-0000-4000-8000-000000000001"
    team_url = "urn:uuid:7d4a2a5e-0000-4000-8000-000000000002"
    bundle = _bundle("transaction", [
        _post("urn:uuid:7d4a2a5e-0000-4000-8000-000000000003", {
            "resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": patient_url}, "careTeam": [{"reference": team_url}]}),
        _post(team_url, {"resourceType": "CareTeam", "status": "active",
                         "subject": {"reference": patient_url}}),
        _post(patient_url, _patient()),
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 3
    plan_location = body["entry"][0]["response"]["location"]
    patient_id = body["entry"][2]["response"]["location"].split("/")[-3]
    plan = client.get(plan_location.split("/_history")[0]).json()
    assert plan["subject"]["reference"] == f"Patient/{patient_id}"
    assert plan["careTeam"][0]["reference"].startswith("CareTeam/")
    found = client.get("/fhir/CarePlan", params={"patient": f"Patient/{patient_id}"}).json()
    assert found["total"] == 1


def test_transaction_with_one_invalid_entry_leaves_nothing(client: TestClient) -> None:
    bundle = _bundle("transaction", [
        _post("urn:uuid:a0000000-0000-4000-8000-000000000001", _patient("Keep")),
        _post("urn:uuid:a0000000-0000-4000-8000-000000000002",
              {"resourceType": "Encounter", "status": "not-a-status",
               "class": {"code": "IMP"}}),
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    assert _count(client, "Patient") == 0
    assert _count(client, "Encounter") == 0
    assert client.get("/fhir/_history").json()["total"] == 0


def test_transaction_with_dangling_reference_is_refused_whole(client: TestClient) -> None:
    bundle = _bundle("transaction", [
        _post("urn:uuid:b0000000-0000-4000-8000-000000000001", _patient()),
        _post("urn:uuid:b0000000-0000-4000-8000-000000000002",
              {"resourceType": "CarePlan", "status": "active", "intent": "plan",
               "subject": {"reference": "Patient/does-not-exist"}}),
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 422
    assert "Patient/does-not-exist" in response.json()["issue"][0]["diagnostics"]
    assert _count(client, "Patient") == 0


def test_two_entries_resolving_to_one_resource_fail(client: TestClient) -> None:
    encounter = {"resourceType": "Encounter", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "IMP"},
                 "identifier": [{"system": "urn:visits", "value": "V1"}]}
    finished = dict(encounter, status="finished")
    url = "Encounter?identifier=urn:visits|V1"
    bundle = _bundle("transaction", [
        {"resource": encounter, "request": {"method": "PUT", "url": url}},
        {"resource": finished, "request": {"method": "PUT", "url": url}},
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 400
    assert "both resolve to" in response.json()["issue"][0]["diagnostics"]
    assert _count(client, "Encounter") == 0


def test_transaction_conditional_create_and_update(client: TestClient) -> None:
    ident = [{"system": "urn:mrn", "value": "77"}]
    first = client.post("/fhir", json=_bundle("transaction", [
        _post("urn:uuid:c0000000-0000-4000-8000-000000000001", _patient(identifier=ident),
              ifNoneExist="identifier=urn:mrn|77")]))
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    second = client.post("/fhir", json=_bundle("transaction", [
        _post("urn:uuid:c0000000-0000-4000-8000-000000000002", _patient(identifier=ident),
              ifNoneExist="identifier=urn:mrn|77"),
        {"resource": _patient("Renamed", identifier=ident),
         "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|88"}},
    ]))
    assert second.status_code == 200, second.text
    statuses = [e["response"]["status"] for e in second.json()["entry"]]
    assert statuses == ["200 OK", "201 Created"]
    assert _count(client, "Patient") == 2


def test_transaction_get_and_delete_entries(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=_patient()).json()
    other = client.post("/fhir/Patient", json=_patient("Other")).json()
    bundle = _bundle("transaction", [
        {"request": {"method": "GET", "url": f"Patient/{other['id']}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{created['id']}"}},
        {"request": {"method": "GET", "url": "Patient?family=Nakamura"}},
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["resource"]["name"][0]["family"] == "Other"
    assert entries[1]["response"]["status"] == "204 No Content"
    # GETs run after the DELETE (R4 transaction processing order)
    assert entries[2]["resource"]["total"] == 0
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410


def test_batch_entries_are_independent(client: TestClient) -> None:
    bundle = _bundle("batch", [
        {"resource": _patient("Good"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "sometimes"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
    ])
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1].startswith("400")
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert statuses[2].startswith("404")
    assert _count(client, "Patient") == 1


def test_bundle_of_wrong_type_is_400(client: TestClient) -> None:
    response = client.post("/fhir", json=_bundle("collection", []))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]
