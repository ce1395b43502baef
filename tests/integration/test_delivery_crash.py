"""`gateway worker` processes killed with SIGKILL in the middle of delivering lose nothing: a
new process delivers every notification (at least once), in order per patient."""

from __future__ import annotations

import signal
import time
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.sync_support import (
    Received,
    ReceiverServer,
    encounter,
    new_patient,
    subscription,
    wait_for,
    worker_process,
)


def _slowly(request: Received) -> int:
    time.sleep(0.05)
    return 200


def _numbers(server: ReceiverServer) -> list[int]:
    return [int(r.headers["x-gateway-event-number"]) for r in server.receiver.accepted()]


def test_sigkill_during_delivery_loses_nothing(database_url: str, sync_app: Any,
                                               api: TestClient,
                                               receiver: ReceiverServer) -> None:
    receiver.receiver.respond = _slowly
    sid = api.post("/fhir/Subscription",
                   json=subscription(receiver.url, "Encounter")).json()["id"]
    alice = new_patient(api)
    with worker_process(database_url) as first:
        wait_for(lambda: api.get(f"/fhir/Subscription/{sid}").json()["status"] == "active",
                 timeout=30, what="handshake by the worker process")
        for _ in range(20):
            api.post("/fhir/Encounter", json=encounter(alice))
        wait_for(lambda: len(_numbers(receiver)) >= 3, timeout=30, what="first deliveries")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(set(_numbers(receiver))) < 20  # it really died mid-way
    with worker_process(database_url):
        wait_for(lambda: set(_numbers(receiver)) == set(range(1, 21)), timeout=30,
                 what="every notification after restart")
    firsts = list(dict.fromkeys(_numbers(receiver)))  # first arrival of each event
    assert firsts == list(range(1, 21))


def test_two_worker_processes_deliver_each_notification_once(
        database_url: str, sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    sid = api.post("/fhir/Subscription",
                   json=subscription(receiver.url, "Encounter")).json()["id"]
    patients = [new_patient(api) for _ in range(3)]
    with worker_process(database_url), worker_process(database_url):
        wait_for(lambda: api.get(f"/fhir/Subscription/{sid}").json()["status"] == "active",
                 timeout=30, what="handshake")
        for _ in range(5):
            for patient in patients:
                api.post("/fhir/Encounter", json=encounter(patient))
        wait_for(lambda: len(_numbers(receiver)) >= 15, timeout=30, what="all notifications")
        time.sleep(0.3)  # room for a duplicate to show up, if there were one
    assert sorted(_numbers(receiver)) == list(range(1, 16))
    assert len(receiver.receiver.accepted("handshake")) == 1
    focus_patient = {}
    for patient in patients:
        for entry in api.get("/fhir/Encounter", params={"patient": patient}).json()["entry"]:
            focus_patient[entry["resource"]["id"]] = patient
    for patient in patients:  # in order per patient
        mine = [int(r.headers["x-gateway-event-number"])
                for r in receiver.receiver.accepted()
                if focus_patient[r.headers["x-gateway-focus"].split("/")[1]] == patient]
        assert mine == sorted(mine) and len(mine) == 5
