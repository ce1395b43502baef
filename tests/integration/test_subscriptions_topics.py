"""Topic-based Subscriptions (Subscriptions R5 Backport IG, R4): refused when unsupported,
handshake and heartbeat Bundles, admitted/discharged/transferred notifications filtered by
patient, organization and class, the three payload contents, ``$status`` and ``$events``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.sync.topics import BASE
from tests.integration.sync_support import (
    ADMITTED,
    BACKPORT,
    DISCHARGED,
    ReceiverServer,
    WorkerThread,
    encounter,
    new_patient,
    topic_subscription,
    wait_for,
)


def _create(api: TestClient, body: dict[str, Any]) -> str:
    response = api.post("/fhir/Subscription", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _active(api: TestClient, sid: str) -> bool:
    return api.get(f"/fhir/Subscription/{sid}").json()["status"] == "active"


def _bundles(server: ReceiverServer, kind: str = "event-notification") -> list[dict[str, Any]]:
    return [orjson.loads(r.body) for r in server.receiver.accepted(kind)]


def _status(bundle: dict[str, Any]) -> dict[str, Any]:
    """The status Parameters (first entry) as name -> value or list of parts."""
    params = bundle["entry"][0]["resource"]
    assert params["resourceType"] == "Parameters"
    out: dict[str, Any] = {}
    for p in params["parameter"]:
        if "part" in p:
            out.setdefault(p["name"], []).append(
                {q["name"]: next(v for k, v in q.items() if k.startswith("value"))
                 for q in p["part"]})
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def _admit(api: TestClient, patient: str, klass: str = "IMP", **extra: Any) -> str:
    created = api.post("/fhir/Encounter",
                       json=dict(encounter(patient, klass, "planned"), **extra)).json()
    api.put(f"/fhir/Encounter/{created['id']}",
            json=dict(encounter(patient, klass, "in-progress"), id=created["id"], **extra))
    return str(created["id"])


@pytest.mark.parametrize(("change", "expression"), [
    (lambda b: b.update(criteria=BASE + "nothing-like-this"), "Subscription.criteria"),
    (lambda b: b.update(_criteria={"extension": [
        {"url": BACKPORT + "backport-filter-criteria", "valueString": "Patient?name=x"}]}),
     "Subscription.criteria.extension"),
    (lambda b: b.update(_criteria={"extension": [
        {"url": BACKPORT + "backport-filter-criteria", "valueString": "Encounter?zz=1"}]}),
     "Subscription.criteria"),
    (lambda b: b["channel"].pop("payload"), "Subscription.channel.payload"),
    (lambda b: b["channel"]["_payload"]["extension"][0].update(valueCode="everything"),
     "Subscription.channel.payload.extension"),
    (lambda b: b["channel"].update(extension=[{"url": BACKPORT + "backport-other",
                                               "valueString": "x"}]),
     "Subscription.channel.extension[0]"),
])
def test_unsupported_topic_subscriptions_are_refused(api: TestClient, change: Any,
                                                     expression: str) -> None:
    body = topic_subscription("http://127.0.0.1:9/hook", ADMITTED)
    change(body)
    response = api.post("/fhir/Subscription", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [expression]


def test_handshake_admission_and_discharge_with_filters(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    alice, bob = new_patient(api), new_patient(api)
    org = api.post("/fhir/Organization", json={"resourceType": "Organization",
                                                "name": "General"}).json()["id"]
    admitted = _create(api, topic_subscription(receiver.url, ADMITTED, [
        f"Encounter?patient=Patient/{alice}", "Encounter?class=IMP",
        f"Encounter?service-provider=Organization/{org}"]))
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _active(api, admitted), what="handshake")
        handshake = _bundles(receiver, "handshake")[0]
        assert handshake["type"] == "history"
        assert _status(handshake)["type"] == "handshake"
        assert _status(handshake)["topic"] == ADMITTED
        assert _status(handshake)["events-since-subscription-start"] == "0"
        provider = {"serviceProvider": {"reference": f"Organization/{org}"}}
        match = _admit(api, alice, **provider)
        _admit(api, alice, "AMB", **provider)   # other class
        _admit(api, bob, **provider)            # other patient
        _admit(api, alice)                      # other organization
        api.put(f"/fhir/Encounter/{match}",      # a discharge is not an admission
                json=dict(encounter(alice, "IMP", "finished"), id=match, **provider))
        wait_for(lambda: _bundles(receiver), what="admission notification")
    bundles = _bundles(receiver)
    assert len(bundles) == 1
    status = _status(bundles[0])
    assert status["type"] == "event-notification" and status["status"] == "active"
    assert status["events-since-subscription-start"] == "1"
    event = status["notification-event"][0]
    assert event["event-number"] == "1"
    assert event["focus"]["reference"].endswith(f"Encounter/{match}")
    assert event["additional-context"]["reference"].endswith(f"Patient/{alice}")
    focus = bundles[0]["entry"][1]
    assert "resource" not in focus  # id-only
    assert focus["request"] == {"method": "PUT", "url": f"Encounter/{match}"}


def test_payload_contents_discharge_and_transfer(sync_app: Any, api: TestClient,
                                                 receiver: ReceiverServer) -> None:
    alice = new_patient(api)
    ward, icu = (api.post("/fhir/Location", json={"resourceType": "Location", "name": n})
                 .json()["id"] for n in ("Ward", "ICU"))
    full = _create(api, topic_subscription(receiver.url, DISCHARGED, content="full-resource"))
    empty = _create(api, topic_subscription(receiver.url, BASE + "encounter-transferred",
                                            content="empty"))
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _active(api, full) and _active(api, empty), what="handshakes")
        at = [{"location": {"reference": f"Location/{ward}"}}]
        eid = _admit(api, alice, location=at)
        moved = [{"location": {"reference": f"Location/{icu}"}}]
        api.put(f"/fhir/Encounter/{eid}",
                json=dict(encounter(alice, "IMP", "in-progress"), id=eid, location=moved))
        done = api.put(f"/fhir/Encounter/{eid}", json=dict(
            encounter(alice, "IMP", "finished"), id=eid, location=moved)).json()
        wait_for(lambda: len(_bundles(receiver)) == 2, what="two notifications")
    by_topic = {_status(b)["topic"]: b for b in _bundles(receiver)}
    discharged = by_topic[DISCHARGED]
    assert discharged["entry"][1]["resource"] == done  # full-resource: that version
    transferred = by_topic[BASE + "encounter-transferred"]
    assert len(transferred["entry"]) == 1  # empty: the status only
    assert "focus" not in _status(transferred)["notification-event"][0]


def test_heartbeat(sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    sid = _create(api, topic_subscription(receiver.url, ADMITTED, heartbeat=1))
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _bundles(receiver, "heartbeat"), timeout=10, what="heartbeat")
    heartbeat = _bundles(receiver, "heartbeat")[0]
    assert _status(heartbeat)["type"] == "heartbeat"
    assert _status(heartbeat)["subscription"]["reference"].endswith(f"Subscription/{sid}")


def test_status_and_events_replay_any_range(sync_app: Any, api: TestClient,
                                            receiver: ReceiverServer) -> None:
    alice = new_patient(api)
    sid = _create(api, topic_subscription(receiver.url, ADMITTED))
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _active(api, sid), what="handshake")
        admitted = [_admit(api, alice) for _ in range(3)]
        wait_for(lambda: len(_bundles(receiver)) == 3, what="notifications")
    status = api.get(f"/fhir/Subscription/{sid}/$status")
    assert status.status_code == 200
    params = _status({"entry": [status.json()["entry"][0]]})
    assert params["type"] == "query-status"
    assert params["events-since-subscription-start"] == "3"
    everyone = api.get("/fhir/Subscription/$status").json()
    assert everyone["total"] == 1
    replay = api.get(f"/fhir/Subscription/{sid}/$events",
                     params={"eventsSinceNumber": 2, "eventsUntilNumber": 3,
                             "content": "full-resource"}).json()
    assert replay["type"] == "history"
    replayed = _status(replay)
    assert replayed["type"] == "query-event"
    assert [e["event-number"] for e in replayed["notification-event"]] == ["2", "3"]
    assert [e["resource"]["id"] for e in replay["entry"][1:]] == admitted[1:]
    posted = api.post(f"/fhir/Subscription/{sid}/$events", json={
        "resourceType": "Parameters",
        "parameter": [{"name": "eventsSinceNumber", "valueString": "3"}]}).json()
    assert [e["event-number"] for e in _status(posted)["notification-event"]] == ["3"]
    bad = api.get(f"/fhir/Subscription/{sid}/$events", params={"eventsSinceNumber": "x"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["eventsSinceNumber"]
    assert api.get("/fhir/Subscription/nope/$status").status_code == 404


def test_topics_are_advertised(api: TestClient) -> None:
    statement = api.get("/fhir/metadata").json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    canonicals = [e["valueCanonical"] for e in entry["extension"]
                  if e["url"] == BACKPORT + "capabilitystatement-subscriptiontopic-canonical"]
    assert ADMITTED in canonicals and DISCHARGED in canonicals and len(canonicals) == 6
    assert {o["name"] for o in entry["operation"]} == {"status", "events"}
    topics = {t["url"]: t for t in api.get("/sync/topics").json()}
    assert set(topics) == set(canonicals)
    assert topics[ADMITTED]["resourceTrigger"][0]["resource"] == "Encounter"
