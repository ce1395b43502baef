"""Care-team routing: current members of a patient's CareTeam with a notification Endpoint
hear of the patient's transitions and plan changes without any Subscription, and stop when
their participation ends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.sync.careteam import CARE_TEAM_TOPIC, FORMAT_SYSTEM
from tests.integration.sync_support import (
    ReceiverServer,
    WorkerThread,
    encounter,
    fast_settings,
    new_patient,
    subscription,
    wait_for,
)

PAST = {"start": "2020-01-01", "end": "2021-01-01"}


def endpoint(address: str, code: str = "backport-notification") -> dict[str, Any]:
    return {"resourceType": "Endpoint", "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                                         "endpoint-connection-type", "code": "hl7-fhir-rest"},
            "payloadType": [{"coding": [{"system": FORMAT_SYSTEM, "code": code}]}],
            "address": address, "header": ["Authorization: Bearer care-team"]}


def _create(api: TestClient, body: dict[str, Any]) -> str:
    response = api.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _paths(server: ReceiverServer) -> list[str]:
    return [r.path for r in server.receiver.accepted()]


@pytest.mark.parametrize(("change", "expression"), [
    ({"payloadType": [{"coding": [{"system": FORMAT_SYSTEM, "code": "rest-write"},
                                  {"system": FORMAT_SYSTEM, "code": "davinci-message"}]}]},
     "Endpoint.payloadType"),
    ({"payloadType": [{"coding": [{"system": FORMAT_SYSTEM, "code": "telepathy"}]}]},
     "Endpoint.payloadType[0]"),
    ({"address": "mllp://10.0.0.1:2575"}, "Endpoint.address"),
    ({"header": ["no colon here"]}, "Endpoint.header[0]"),
])
def test_unsupported_notification_endpoints_are_refused(api: TestClient,
                                                        change: dict[str, Any],
                                                        expression: str) -> None:
    response = api.post("/fhir/Endpoint", json=dict(endpoint("http://x.org/hook"), **change))
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [expression]


def test_current_care_team_members_hear_transitions_and_plan_changes(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    alice, bob = new_patient(api), new_patient(api)
    base = receiver.url
    practice = _create(api, {"resourceType": "Organization", "name": "Elm Street Practice",
                             "endpoint": [{"reference": "Endpoint/"
                                           + _create(api, endpoint(base + "/pcp"))}]})
    doctor = _create(api, {"resourceType": "Practitioner", "name": [{"family": "Reyes"}]})
    _create(api, {"resourceType": "PractitionerRole",
                  "practitioner": {"reference": f"Practitioner/{doctor}"},
                  "endpoint": [{"reference": "Endpoint/"
                                + _create(api, endpoint(base + "/hospitalist"))}]})
    former = _create(api, {"resourceType": "Practitioner", "name": [{"family": "Former"}]})
    _create(api, {"resourceType": "PractitionerRole",
                  "practitioner": {"reference": f"Practitioner/{former}"},
                  "endpoint": [{"reference": "Endpoint/"
                                + _create(api, endpoint(base + "/former"))}]})
    team = {"resourceType": "CareTeam", "status": "active",
            "subject": {"reference": f"Patient/{alice}"},
            "participant": [{"member": {"reference": f"Organization/{practice}"}},
                            {"member": {"reference": f"Practitioner/{doctor}"}},
                            {"member": {"reference": f"Practitioner/{former}"},
                             "period": PAST}]}
    team_id = _create(api, team)
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        stay = api.post("/fhir/Encounter", json=encounter(alice, status="planned")).json()
        api.post("/fhir/Encounter", json=encounter(bob))           # not their patient
        api.put(f"/fhir/Encounter/{stay['id']}",                    # admission
                json=dict(encounter(alice), id=stay["id"]))
        plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "subject": {"reference": f"Patient/{alice}"}}
        api.post("/fhir/CarePlan", json=plan)                       # plan change
        wait_for(lambda: len(_paths(receiver)) == 4, what="four notifications")
        assert sorted(_paths(receiver)) == ["/hook/hospitalist", "/hook/hospitalist",
                                            "/hook/pcp", "/hook/pcp"]
        ended = dict(team, id=team_id, participant=[
            {"member": {"reference": f"Organization/{practice}"}, "period": PAST},
            *team["participant"][1:]])
        assert api.put(f"/fhir/CareTeam/{team_id}", json=ended).status_code == 200
        api.post("/fhir/CarePlan", json=plan)
        wait_for(lambda: len(_paths(receiver)) == 5, what="the hospitalist only")
    assert _paths(receiver)[-1] == "/hook/hospitalist"
    first = receiver.receiver.accepted()[0]
    bundle = orjson.loads(first.body)
    assert first.headers["authorization"] == "Bearer care-team"
    assert first.headers["x-gateway-subscription"].startswith("Endpoint/")
    params = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert params["topic"]["valueCanonical"] == CARE_TEAM_TOPIC
    assert params["subscription"]["valueReference"]["reference"].startswith("Endpoint/")
    assert bundle["entry"][1]["resource"]["id"] == stay["id"]
    listed = api.get("/sync/deliveries", params={"status": "delivered"}).json()
    assert {d["subscription"].split("/")[0] for d in listed} == {"Endpoint"}


def test_a_failing_endpoint_leaves_a_subscription_with_the_same_id_alone(
        database_url: str, receiver: ReceiverServer) -> None:
    """Client-assigned ids may coincide across types: giving up on Endpoint/shared must
    not put Subscription/shared in error."""
    settings = fast_settings(database_url, delivery_give_up_seconds=0.3)
    application = create_app(settings)
    try:
        with TestClient(application, base_url="http://testserver") as api, \
                WorkerThread(application.state.database, settings):
            alice = new_patient(api)
            sub = dict(subscription(receiver.url + "/sub", "Encounter?class=IMP"), id="shared")
            assert api.put("/fhir/Subscription/shared", json=sub).status_code == 201
            wait_for(lambda: api.get("/fhir/Subscription/shared").json()["status"] == "active",
                     what="the handshake")
            dead = dict(endpoint("http://127.0.0.1:9/closed"), id="shared")
            assert api.put("/fhir/Endpoint/shared", json=dead).status_code == 201
            practice = _create(api, {"resourceType": "Organization", "name": "Closed Practice",
                                     "endpoint": [{"reference": "Endpoint/shared"}]})
            _create(api, {"resourceType": "CareTeam", "status": "active",
                          "subject": {"reference": f"Patient/{alice}"},
                          "participant": [{"member": {"reference":
                                                      f"Organization/{practice}"}}]})
            api.post("/fhir/Encounter", json=encounter(alice))
            wait_for(lambda: api.get("/sync/deliveries", params={"status": "failed"}).json(),
                     what="the endpoint delivery to fail")
            wait_for(lambda: len(receiver.receiver.accepted()) == 1, what="the subscriber")
            assert api.get("/fhir/Subscription/shared").json()["status"] == "active"
    finally:
        application.state.database.dispose()
