"""The timeline's other sources: ADT messages (out of order) and notification deliveries."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.hl7v2_helpers import ack_of, encounter, post, sample
from tests.integration.sync_support import (
    Receiver,
    ReceiverServer,
    WorkerThread,
    new_patient,
    subscription,
    wait_for,
)
from tests.integration.sync_support import encounter as new_encounter


def _entries(client: TestClient, patient_reference: str) -> list[dict[str, Any]]:
    response = client.get(f"/patients/{patient_reference.split('/')[1]}/timeline")
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def test_an_adt_message_out_of_order_shows_as_a_conflict(client: TestClient) -> None:
    for name in ("north_a03_v25", "north_a01_v25"):  # the discharge arrives first
        assert str(ack_of(post(client, sample(name)).content)["MSA.F1"]) == "AA"
    visit = encounter(client)
    entries = _entries(client, visit["subject"]["reference"])
    conflict, = [e for e in entries if e["kind"] == "conflict.out-of-order"]
    assert conflict["reference"] == f"Encounter/{visit['id']}/_history/2"
    assert conflict["summary"].startswith("ADT^A01 dated 2024-03-05T08:25 arrived "
                                          "after ADT^A03 dated 2024-03-09T10:45")
    discharged, = [e for e in entries if e["kind"] == "encounter.discharged"]
    assert discharged["summary"].startswith("Discharged from NORTH (inpatient)")
    assert discharged["time"].startswith("2024-03-09T10:45")


def test_notifications_delivered_and_failed_per_recipient(sync_app: Any,
                                                          api: TestClient) -> None:
    with ReceiverServer(Receiver()) as good, ReceiverServer(Receiver()) as gone:
        # 410 Gone: the receiver says it will never take it; the gateway gives up at once.
        gone.receiver.respond = lambda r: 200 if r.headers.get(
            "x-gateway-notification-type") == "handshake" else 410
        ids = [api.post("/fhir/Subscription", json=subscription(server.url, "Encounter"))
               .json()["id"] for server in (good, gone)]
        patient = new_patient(api)
        with WorkerThread(sync_app.state.database, sync_app.state.settings):
            wait_for(lambda: all(api.get(f"/fhir/Subscription/{i}").json()["status"] == "active"
                                 for i in ids), what="handshakes")
            created = api.post("/fhir/Encounter", json=new_encounter(patient)).json()
            wait_for(lambda: len([e for e in _entries(api, f"Patient/{patient}")
                                  if e["kind"].startswith("notification.")]) == 2,
                     what="two finished deliveries")
    entries = _entries(api, f"Patient/{patient}")
    focus = f"Encounter/{created['id']}/_history/1"
    delivered, = [e for e in entries if e["kind"] == "notification.delivered"]
    failed, = [e for e in entries if e["kind"] == "notification.failed"]
    assert delivered["reference"] == failed["reference"] == focus
    assert delivered["summary"] == (f"Encounter change delivered to Subscription/{ids[0]} "
                                    f"({good.url})")
    assert failed["summary"] == (f"Encounter change not delivered to Subscription/{ids[1]} "
                                 f"({gone.url}): HTTP 410")
    assert failed["tone"] == "bad"


def test_an_emergency_registration_is_an_arrival(client: TestClient) -> None:
    assert str(ack_of(post(client, sample("south_a04_v23")).content)["MSA.F1"]) == "AA"
    visit = encounter(client, "urn:hl7v2:authority:SOUTH|S-ENC-4410")
    arrived, = [e for e in _entries(client, visit["subject"]["reference"])
                if e["kind"] == "encounter.arrived"]
    assert arrived["summary"] == "Arrived (emergency) at SOUTH"
    assert arrived["time"].startswith("2024-03-16T03:10")  # 22:10 -05:00
    assert arrived["reference"] == f"Encounter/{visit['id']}/_history/1"
