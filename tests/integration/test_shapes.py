"""Everything the API emits is valid R4 (checked with the fhir.resources R4B models)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class


def _valid(body: dict[str, Any]) -> None:
    get_fhir_model_class(body["resourceType"]).model_validate(body)


def _seed(client: TestClient) -> str:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                              "name": [{"family": "Shape"}]}).json()["id"]
    client.post("/fhir/CarePlan", json={"resourceType": "CarePlan", "status": "active",
                                        "intent": "plan",
                                        "subject": {"reference": f"Patient/{pid}"}})
    return pid


def test_capability_statement_lists_what_is_implemented(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    _valid(statement)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert len(resources) == 145
    careplan = resources["CarePlan"]
    params = {p["name"]: p["type"] for p in careplan["searchParam"]}
    assert params["patient"] == "reference"
    assert params["activity-date"] == "date"
    assert "CarePlan:care-team" in careplan["searchInclude"]
    assert "CarePlan:subject" in resources["Patient"]["searchRevInclude"]
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {
        "transaction", "batch", "history-system"}
    # composite parameters are not implemented, so not listed
    assert "code-value-quantity" not in {p["name"] for p in
                                         resources["Observation"]["searchParam"]}


def test_bundles_and_outcomes_validate(client: TestClient) -> None:
    pid = _seed(client)
    searchset = client.get("/fhir/CarePlan", params={"patient": pid, "foo": "x",
                                                     "_include": "CarePlan:patient"}).json()
    _valid(searchset)
    assert [e["search"]["mode"] for e in searchset["entry"]] == ["match", "include", "outcome"]
    _valid(client.get("/fhir/_history").json())
    _valid(client.get("/fhir/Patient/nope").json())
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": [{"resource": {"resourceType": "Patient"},
                                                     "request": {"method": "POST",
                                                                 "url": "Patient"}}]})
    _valid(response.json())


def test_r4_only_types_are_stored(client: TestClient) -> None:
    """R4 types that R4B dropped are still stored, read and searched."""
    product = {"resourceType": "MedicinalProduct",
               "identifier": [{"system": "urn:products", "value": "mp-1"}]}
    created = client.post("/fhir/MedicinalProduct", json=product)
    assert created.status_code == 201
    found = client.get("/fhir/MedicinalProduct", params={"identifier": "urn:products|mp-1"})
    assert found.json()["total"] == 1
