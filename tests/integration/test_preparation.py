"""Creates whose bodies are validated and indexed in a worker process
(GATEWAY_PREPARE_PROCESSES=1) behave exactly like inline ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.config import Settings


@pytest.fixture
def pooled(settings: Settings) -> Iterator[TestClient]:
    application = create_app(settings.model_copy(update={"prepare_processes": 1}))
    with TestClient(application, base_url="http://testserver") as client:
        assert application.state.preparer._pool is not None
        yield client
    application.state.database.dispose()


def test_create_through_the_pool_is_stored_and_searchable(pooled: TestClient) -> None:
    patient = pooled.post("/fhir/Patient", json={"resourceType": "Patient",
                                                 "name": [{"family": "Pool"}]})
    assert patient.status_code == 201
    pid = patient.json()["id"]
    plan = pooled.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": f"Patient/{pid}"}})
    assert plan.status_code == 201, plan.text
    assert plan.headers["ETag"] == 'W/"1"'
    found = pooled.get(f"/fhir/CarePlan?patient={pid}&status=active").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [plan.json()["id"]]


def test_pool_reports_invalid_bodies_like_inline(pooled: TestClient) -> None:
    bad_code = pooled.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "bogus", "intent": "plan",
        "subject": {"reference": "Patient/x"}})
    assert bad_code.status_code == 400
    assert bad_code.json()["issue"][0]["expression"] == ["CarePlan.status"]
    wrong_type = pooled.post("/fhir/CarePlan", json={"resourceType": "Patient"})
    assert wrong_type.status_code == 400
    assert pooled.post("/fhir/CarePlan", content=b"{not json",
                       headers={"Content-Type": "application/fhir+json"}).status_code == 400
    dangling = pooled.post("/fhir/CarePlan", json={
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/nobody"}})
    assert dangling.status_code == 422
