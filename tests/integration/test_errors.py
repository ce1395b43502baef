"""Bad input gets a clear 4xx OperationOutcome naming the element at fault, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.config import Settings


def _issue(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",',
                           headers={"content-type": "application/fhir+json"})
    assert response.status_code == 400
    assert "not valid JSON" in _issue(response)["diagnostics"]


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42"])
def test_non_object_body_is_400(client: TestClient, body: bytes) -> None:
    response = client.post("/fhir/Patient", content=body,
                           headers={"content-type": "application/fhir+json"})
    assert response.status_code == 400


def test_wrong_resource_type_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={"resourceType": "Encounter"})
    assert response.status_code == 400
    assert _issue(response)["expression"] == ["Encounter.resourceType"]


def test_unknown_element_is_400_with_expression(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={"resourceType": "Patient", "colour": "red"})
    assert response.status_code == 400
    assert _issue(response)["expression"] == ["Patient.colour"]


def test_bad_datatype_is_400_with_path(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"family": "A"}, {"given": "not-a-list"}]})
    assert response.status_code == 400
    assert _issue(response)["expression"][0].startswith("Patient.name[1].given")


def test_invalid_code_is_400_naming_the_element(client: TestClient) -> None:
    response = client.post("/fhir/Encounter", json={
        "resourceType": "Encounter", "status": "half-done", "class": {"code": "IMP"}})
    assert response.status_code == 400
    issue = _issue(response)
    assert issue["expression"] == ["Encounter.status"]
    assert issue["code"] == "code-invalid"


def test_reference_to_missing_resource_is_422(client: TestClient) -> None:
    response = client.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/ghost"}})
    assert response.status_code == 422
    assert "Patient/ghost" in _issue(response)["diagnostics"]


def test_reference_to_deleted_resource_is_422(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    client.delete(f"/fhir/Patient/{pid}")
    response = client.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": f"Patient/{pid}"}})
    assert response.status_code == 422


def test_deleting_a_referenced_resource_is_409(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    client.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": f"Patient/{pid}"}})
    response = client.delete(f"/fhir/Patient/{pid}")
    assert response.status_code == 409
    assert "CarePlan/" in _issue(response)["diagnostics"]


def test_urn_reference_outside_transaction_is_400(client: TestClient) -> None:
    response = client.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": "urn:uuid:0f0f0f0f-0000-4000-8000-000000000000"}})
    assert response.status_code == 400


def test_xml_is_refused(client: TestClient) -> None:
    accept = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert accept.status_code == 406
    assert accept.json()["resourceType"] == "OperationOutcome"
    fmt = client.get("/fhir/metadata", params={"_format": "xml"})
    assert fmt.status_code == 406
    body = client.post("/fhir/Patient", content=b"<Patient/>",
                       headers={"content-type": "application/fhir+xml"})
    assert body.status_code == 415
    assert client.get("/fhir/metadata", params={"_format": "json"}).status_code == 200


def test_oversized_body_is_413(database_url: str) -> None:
    from gateway.api.app import create_app

    app = create_app(Settings(database_url=database_url, max_body_bytes=2048))
    with TestClient(app) as small:
        big = {"resourceType": "Patient", "name": [{"text": "x" * 5000}]}
        response = small.post("/fhir/Patient", json=big)
        assert response.status_code == 413
        assert response.json()["resourceType"] == "OperationOutcome"
    app.state.database.dispose()


def test_unknown_route_and_method_are_outcomes(client: TestClient) -> None:
    missing = client.get("/fhir/Patient/1/_history/1/extra")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    wrong = client.patch("/fhir/Patient/1", json={})
    assert wrong.status_code == 405
    assert wrong.json()["resourceType"] == "OperationOutcome"


def test_invalid_if_match_header_is_400(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    response = client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid},
                          headers={"If-Match": "banana"})
    assert response.status_code == 400


@pytest.mark.parametrize("params", [{"name": "a\x00b"}, {"na\x00me": "x"}])
def test_a_nul_character_in_a_search_is_400_naming_the_parameter(client: TestClient,
                                                                  params: dict[str, str]) -> None:
    response = client.get("/fhir/Patient", params=params)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert "NUL" in issue["diagnostics"] and issue["expression"] == ["name"]


def test_a_control_character_in_a_string_is_400_naming_the_element(client: TestClient) -> None:
    body = b'{"resourceType":"Patient","name":[{"family":"Ok\\tay"},{"family":"a\\u0000b"}]}'
    response = client.post("/fhir/Patient", content=body,
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Patient.name[1].family"]
