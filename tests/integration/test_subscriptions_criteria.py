"""Classic R4 criteria Subscriptions through the FHIR API: refused when they cannot be
honoured, handshake then ``active`` (or ``error``), and notifications to a real receiver."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.store.uow import UnitOfWork
from gateway.sync import signing
from gateway.sync.router import Router
from tests.integration.sync_support import (
    SECRETS,
    ReceiverServer,
    WorkerThread,
    encounter,
    new_patient,
    subscription,
    wait_for,
)

GOOD = "Encounter?class=IMP"


def _status(api: TestClient, subscription_id: str) -> str:
    return str(api.get(f"/fhir/Subscription/{subscription_id}").json()["status"])


@pytest.mark.parametrize(("change", "expression"), [
    ({"criteria": "Encounter?bogus=1"}, "Subscription.criteria"),
    ({"criteria": "Nothing?status=x"}, "Subscription.criteria"),
    ({"criteria": "Encounter?class=IMP&_sort=date"}, "Subscription.criteria"),
    ({"criteria": "http://example.org/SubscriptionTopic/admission"},
     "Subscription.criteria"),
    ({"channel": {"type": "websocket"}}, "Subscription.channel.type"),
    ({"channel": {"type": "rest-hook", "endpoint": "ftp://x"}},
     "Subscription.channel.endpoint"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://x.org", "payload": "text/xml"}},
     "Subscription.channel.payload"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://x.org", "header": ["no colon"]}},
     "Subscription.channel.header[0]"),
    ({"status": "active"}, "Subscription.status"),
    ({"end": "2030-01-01T00:00:00Z"}, "Subscription.end"),
])
def test_unsupported_subscriptions_are_refused(api: TestClient, change: dict[str, Any],
                                               expression: str) -> None:
    body = dict(subscription("http://127.0.0.1:9/hook", GOOD), **change)
    response = api.post("/fhir/Subscription", json=body)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]
    assert api.get("/fhir/Subscription").json()["total"] == 0


def test_subscriptions_in_a_transaction_are_checked_too(api: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": subscription("http://127.0.0.1:9/hook", "Encounter?nope=1"),
         "request": {"method": "POST", "url": "Subscription"}}]}
    response = api.post("/fhir", json=bundle)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.criteria"]


def test_update_is_checked(api: TestClient) -> None:
    created = api.post("/fhir/Subscription",
                       json=subscription("http://127.0.0.1:9/hook", GOOD)).json()
    response = api.put(f"/fhir/Subscription/{created['id']}",
                       json=dict(created, criteria="Encounter?class:unknownmod=IMP"))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Subscription.criteria"]


def test_handshake_activates(sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    created = api.post("/fhir/Subscription", json=subscription(receiver.url, GOOD)).json()
    assert created["status"] == "requested"
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _status(api, created["id"]) == "active", what="active")
    handshake = receiver.receiver.accepted("handshake")
    assert len(handshake) == 1 and handshake[0].body == b""
    assert handshake[0].headers["x-gateway-subscription"] == f"Subscription/{created['id']}"


def test_failed_handshake_sets_error(sync_app: Any, api: TestClient,
                                     receiver: ReceiverServer) -> None:
    receiver.receiver.status = 503
    created = api.post("/fhir/Subscription", json=subscription(receiver.url, GOOD)).json()
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _status(api, created["id"]) == "error", what="error")
    stored = api.get(f"/fhir/Subscription/{created['id']}").json()
    assert "503" in stored["error"]


def test_matching_changes_are_notified_with_and_without_payload(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    alice, bob = new_patient(api), new_patient(api)
    criteria = f"Encounter?patient=Patient/{alice}&class=IMP"
    plain = api.post("/fhir/Subscription", json=subscription(
        receiver.url, criteria, headers=["Authorization: Bearer abc"])).json()["id"]
    full = api.post("/fhir/Subscription", json=subscription(
        receiver.url, criteria, payload="application/fhir+json")).json()["id"]
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _status(api, plain) == _status(api, full) == "active")
        match = api.post("/fhir/Encounter", json=encounter(alice)).json()
        api.post("/fhir/Encounter", json=encounter(alice, "AMB"))   # other class
        api.post("/fhir/Encounter", json=encounter(bob))            # other patient
        wait_for(lambda: len(receiver.receiver.accepted()) >= 2, what="two notifications")
    got = receiver.receiver.accepted()
    assert len(got) == 2
    empty = next(r for r in got if r.method == "POST")
    assert empty.path == "/hook" and empty.body == b""
    assert empty.headers["authorization"] == "Bearer abc"
    assert empty.headers["x-gateway-subscription"] == f"Subscription/{plain}"
    assert empty.headers["x-gateway-event-number"] == "1"
    put = next(r for r in got if r.method == "PUT")
    assert put.path == f"/hook/Encounter/{match['id']}"
    assert orjson.loads(put.body) == match
    for request in (empty, put):
        assert signing.verify(request.headers["x-gateway-signature"], request.body, SECRETS[1])
        assert request.headers["traceparent"].startswith("00-")


def test_off_and_deleted_subscriptions_log_and_send_nothing(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    db = sync_app.state.database
    alice = new_patient(api)
    kept = api.post("/fhir/Subscription", json=subscription(receiver.url, "Encounter")).json()
    gone = api.post("/fhir/Subscription", json=subscription(receiver.url, "Encounter")).json()
    with WorkerThread(db, sync_app.state.settings):
        wait_for(lambda: _status(api, kept["id"]) == _status(api, gone["id"]) == "active")
        current = api.get(f"/fhir/Subscription/{kept['id']}").json()
        assert api.put(f"/fhir/Subscription/{kept['id']}",
                       json=dict(current, status="off")).status_code == 200
        assert api.delete(f"/fhir/Subscription/{gone['id']}").status_code == 200
        api.post("/fhir/Encounter", json=encounter(alice))
        time.sleep(0.3)
        Router(db).run_until_idle()
    assert receiver.receiver.accepted() == []
    assert api.get("/sync/deliveries", params={"status": "pending"}).json() == []
    assert api.get(f"/fhir/Subscription/{kept['id']}/$status").status_code == 200


def test_a_subscription_written_around_the_api_is_held_in_error(sync_app: Any,
                                                               api: TestClient) -> None:
    """e.g. `gateway load`: the router refuses to route for it instead of guessing."""
    db = sync_app.state.database
    with UnitOfWork(db) as uow:
        stored = uow.repository.create(dict(
            subscription("http://127.0.0.1:9/hook", GOOD), criteria="Encounter?bogus=1"))
        uow.commit()
    Router(db).run_until_idle()
    status = api.get(f"/fhir/Subscription/{stored.resource.id}/$status").json()
    parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert parameters["status"]["valueCode"] == "error"
