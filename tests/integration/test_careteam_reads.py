"""Care-team reads page through every match: a member past the first page must still be
routed to (store/careteams.py)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from gateway.store import careteams
from gateway.store.uow import ReadSession


def test_every_page_of_roles_is_read(app: Any, client: TestClient) -> None:
    doctor = client.post("/fhir/Practitioner", json={"resourceType": "Practitioner"}).json()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "PractitionerRole",
                      "practitioner": {"reference": f"Practitioner/{doctor['id']}"},
                      "endpoint": [{"reference": f"Endpoint/e{n}"}]},
         "request": {"method": "POST", "url": "PractitionerRole"}}
        for n in range(careteams.PAGE + 5)]}
    for n in range(careteams.PAGE + 5):
        assert client.put(f"/fhir/Endpoint/e{n}", json={
            "resourceType": "Endpoint", "id": f"e{n}", "status": "active",
            "connectionType": {"code": "hl7-fhir-rest"}, "payloadType": [{"text": "any"}],
            "address": f"http://127.0.0.1:9/{n}"}).status_code == 201
    assert client.post("/fhir", json=bundle).status_code == 200
    with ReadSession(app.state.database) as repo:
        found = careteams.member_endpoints(repo, f"Practitioner/{doctor['id']}")
    assert sorted(found) == sorted(f"Endpoint/e{n}" for n in range(careteams.PAGE + 5))
