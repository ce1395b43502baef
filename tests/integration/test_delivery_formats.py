"""Endpoint formats of care-team routing: Da Vinci notification messages posted to
``$process-message`` and FHIR REST writes into the member's own FHIR server (another gateway
on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from gateway.mapping.davinci import EVENT_SYSTEM, read_notification
from gateway.sync.careteam import FORMAT_SYSTEM
from tests.conftest import LiveServer
from tests.integration.sync_support import (
    ReceiverServer,
    WorkerThread,
    encounter,
    new_patient,
    wait_for,
)


def _create(api: TestClient, body: dict[str, Any]) -> str:
    response = api.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _member_with_endpoint(api: TestClient, patient: str, address: str, code: str) -> None:
    """A CareTeam of the patient whose member Organization has an Endpoint of one format."""
    connection = "hl7-fhir-msg" if code == "davinci-message" else "hl7-fhir-rest"
    endpoint = _create(api, {
        "resourceType": "Endpoint", "status": "active", "address": address,
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                                     "endpoint-connection-type", "code": connection},
        "payloadType": [{"coding": [{"system": FORMAT_SYSTEM, "code": code}]}],
        "payloadMimeType": ["application/fhir+json"]})
    practice = _create(api, {"resourceType": "Organization", "name": "Skilled nursing",
                             "endpoint": [{"reference": f"Endpoint/{endpoint}"}]})
    _create(api, {"resourceType": "CareTeam", "status": "active",
                  "subject": {"reference": f"Patient/{patient}"},
                  "participant": [{"member": {"reference": f"Organization/{practice}"}}]})


def test_davinci_endpoint_gets_a_notification_message_per_transition(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    patient = new_patient(api)
    _member_with_endpoint(api, patient, receiver.url, "davinci-message")
    doctor = _create(api, {"resourceType": "Practitioner", "name": [{"family": "Okafor"}]})
    stay = dict(encounter(patient), identifier=[{"system": "urn:visit", "value": "V1"}],
                participant=[{"individual": {"reference": f"Practitioner/{doctor}"}}])
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        created = api.post("/fhir/Encounter", json=stay).json()
        api.post("/fhir/CarePlan", json={"resourceType": "CarePlan", "status": "active",
                                         "intent": "plan",
                                         "subject": {"reference": f"Patient/{patient}"}})
        api.put(f"/fhir/Encounter/{created['id']}",
                json=dict(stay, id=created["id"], status="finished"))
        wait_for(lambda: len(receiver.receiver.accepted()) == 2, what="two messages")
    first, second = receiver.receiver.accepted()
    assert first.path == second.path == "/hook/$process-message"
    assert first.headers["content-type"] == "application/fhir+json"
    events = []
    for request in (first, second):
        bundle = orjson.loads(request.body)
        notification = read_notification(bundle)  # what the gateway itself accepts inbound
        header = bundle["entry"][0]["resource"]
        assert header["eventCoding"]["system"] == EVENT_SYSTEM
        assert header["focus"] == [{"reference": f"Encounter/{created['id']}"}]
        assert notification.visit == {"system": "urn:visit", "value": "V1"}
        bundled = {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert bundled == {"MessageHeader", "Encounter", "Patient", "Practitioner"}
        events.append(header["eventCoding"]["code"])
    assert events == ["notification-admit", "notification-discharge"]  # no CarePlan message


def test_rest_write_endpoint_writes_into_the_members_fhir_server(
        sync_app: Any, api: TestClient, partner_gateway: LiveServer) -> None:
    patient = new_patient(api)
    _member_with_endpoint(api, patient, partner_gateway.base, "rest-write")
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "title": "Heart failure follow-up",
            "subject": {"reference": f"Patient/{patient}"}}
    remote = httpx.Client(base_url=partner_gateway.base)
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        created = api.post("/fhir/CarePlan", json=plan).json()
        found = wait_for(lambda: remote.get("/CarePlan").json().get("entry"),
                         what="the plan written into the member's server")
        api.put(f"/fhir/CarePlan/{created['id']}",
                json=dict(plan, id=created["id"], title="Heart failure, week 2"))
        wait_for(lambda: remote.get("/CarePlan").json()["entry"][0]["resource"]["title"]
                 == "Heart failure, week 2", what="the change written")
    copy = remote.get(f"/CarePlan/{found[0]['resource']['id']}").json()
    assert len(remote.get("/CarePlan").json()["entry"]) == 1  # updated, not duplicated
    assert copy["meta"]["versionId"] == "2"
    assert copy["identifier"] == [{"system": "urn:fhir-care-gateway:local",
                                   "value": f"CarePlan/{created['id']}"}]
    assert copy["subject"] == {"type": "Patient", "identifier": {
        "system": "urn:fhir-care-gateway:local", "value": f"Patient/{patient}"}}
    delivered = api.get("/sync/deliveries", params={"status": "delivered"}).json()
    assert [d["attempts"] for d in delivered] == [1, 1]
    remote.close()
