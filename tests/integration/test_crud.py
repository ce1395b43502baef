"""Create, read, vread, update, delete and history through HTTP (R4 http.html)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

FHIR = "application/fhir+json"


def patient(**extra: Any) -> dict[str, Any]:
    body = {"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Ada"]}],
            "gender": "female", "birthDate": "1948-03-02"}
    body.update(extra)
    return body


def create(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_with_location_etag_and_meta(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(id="ignored"),
                           headers={"content-type": FHIR})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("+00:00")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == (
        f"http://testserver/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_read_serves_the_stored_resource(client: TestClient) -> None:
    created = create(client, patient())
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


def test_read_unknown_is_404_outcome(client: TestClient) -> None:
    response = client.get("/fhir/Patient/nope")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/NotAType/1").status_code == 404


def test_update_creates_versions_and_vread_reads_them(client: TestClient) -> None:
    created = create(client, patient())
    pid = created["id"]
    changed = patient(id=pid, gender="other")
    response = client.put(f"/fhir/Patient/{pid}", json=changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["gender"] == "female"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["gender"] == "other"
    assert client.get(f"/fhir/Patient/{pid}/_history/3").status_code == 404


def test_update_with_same_content_writes_no_new_version(client: TestClient) -> None:
    created = create(client, patient())
    again = client.put(f"/fhir/Patient/{created['id']}", json=patient(id=created["id"]))
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "1"


def test_update_as_create_with_client_id(client: TestClient) -> None:
    response = client.put("/fhir/Patient/pat-42", json=patient(id="pat-42"))
    assert response.status_code == 201
    assert response.headers["location"].endswith("/Patient/pat-42/_history/1")


def test_update_id_mismatch_is_400(client: TestClient) -> None:
    response = client.put("/fhir/Patient/a", json=patient(id="b"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


def test_if_match_stale_version_is_412(client: TestClient) -> None:
    created = create(client, patient())
    pid = created["id"]
    ok = client.put(f"/fhir/Patient/{pid}", json=patient(id=pid, gender="male"),
                    headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = client.put(f"/fhir/Patient/{pid}", json=patient(id=pid, gender="other"),
                       headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"


def test_delete_then_read_is_410_and_history_shows_it(client: TestClient) -> None:
    created = create(client, patient())
    pid = created["id"]
    response = client.delete(f"/fhir/Patient/{pid}")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    history = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["type"] == "history"
    assert history["total"] == 2
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    # deleted resources can be brought back by update
    again = client.put(f"/fhir/Patient/{pid}", json=patient(id=pid))
    assert again.status_code == 201
    assert again.json()["meta"]["versionId"] == "3"


def test_delete_unknown_is_404(client: TestClient) -> None:
    assert client.delete("/fhir/Patient/never").status_code == 404


def test_prefer_return_minimal_and_outcome(client: TestClient) -> None:
    minimal = client.post("/fhir/Patient", json=patient(),
                          headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["location"]
    outcome = client.post("/fhir/Patient", json=patient(),
                          headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_conditional_create(client: TestClient) -> None:
    ident = {"system": "urn:mrn", "value": "123"}
    first = client.post("/fhir/Patient", json=patient(identifier=[ident]),
                        headers={"If-None-Exist": "identifier=urn:mrn|123"})
    assert first.status_code == 201
    second = client.post("/fhir/Patient", json=patient(identifier=[ident]),
                         headers={"If-None-Exist": "identifier=urn:mrn|123"})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    create(client, patient(identifier=[ident]))
    third = client.post("/fhir/Patient", json=patient(identifier=[ident]),
                        headers={"If-None-Exist": "identifier=urn:mrn|123"})
    assert third.status_code == 412


def test_conditional_update_by_identifier(client: TestClient) -> None:
    subject = create(client, patient())
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "identifier": [{"system": "urn:plans", "value": "p1"}],
            "subject": {"reference": f"Patient/{subject['id']}"}}
    created = client.put("/fhir/CarePlan?identifier=urn:plans|p1", json=plan)
    assert created.status_code == 201
    plan["status"] = "completed"
    updated = client.put("/fhir/CarePlan?identifier=urn:plans|p1", json=plan)
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"


def test_conditional_delete(client: TestClient) -> None:
    created = create(client, patient(identifier=[{"system": "urn:mrn", "value": "9"}]))
    response = client.delete("/fhir/Patient?identifier=urn:mrn|9")
    assert response.status_code == 200
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410


def test_type_and_system_history_with_since_and_count(client: TestClient) -> None:
    for _ in range(3):
        create(client, patient())
    page = client.get("/fhir/Patient/_history", params={"_count": 2}).json()
    assert page["total"] == 3
    assert len(page["entry"]) == 2
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = client.get(next_url).json()
    assert len(rest["entry"]) == 1
    seen = {e["fullUrl"] for e in page["entry"]} | {e["fullUrl"] for e in rest["entry"]}
    assert len(seen) == 3
    future = client.get("/fhir/_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
    assert client.get("/fhir/_history").json()["total"] == 3
