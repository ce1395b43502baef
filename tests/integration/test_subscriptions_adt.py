"""An HL7 v2 admission and discharge (POST /hl7v2) reach a topic subscriber and a criteria
subscriber on real HTTP receivers: ingest writes through the repository, the outbox carries
the change to sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.integration.sync_support import (
    ADMITTED,
    DISCHARGED,
    ReceiverServer,
    WorkerThread,
    subscription,
    topic_subscription,
    wait_for,
)

SAMPLES = Path(__file__).parents[1] / "data" / "hl7v2"


def _message(name: str) -> bytes:
    lines = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8").splitlines()
    return "\r".join(line for line in lines if line).encode() + b"\r"


def _receive(api: TestClient, name: str) -> None:
    response = api.post("/hl7v2", content=_message(name),
                        headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert response.status_code == 200 and b"|AA|" in response.content, response.text


def test_adt_admission_and_discharge_are_notified(sync_app: Any, api: TestClient,
                                                  receiver: ReceiverServer) -> None:
    topics = [api.post("/fhir/Subscription", json=topic_subscription(
        receiver.url, topic, content="full-resource")).json()["id"]
        for topic in (ADMITTED, DISCHARGED)]
    classic = api.post("/fhir/Subscription", json=subscription(
        receiver.url, "Encounter?class=IMP", payload="application/fhir+json")).json()["id"]
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: all(api.get(f"/fhir/Subscription/{i}").json()["status"] == "active"
                             for i in [*topics, classic]), what="handshakes")
        _receive(api, "north_a01_v25")
        _receive(api, "north_a03_v25")
        wait_for(lambda: len(receiver.receiver.accepted()) >= 4, what="notifications")
    got = receiver.receiver.accepted()
    bundles = [orjson.loads(r.body) for r in got if r.method == "POST"]
    by_topic = {next(p["valueCanonical"] for p in b["entry"][0]["resource"]["parameter"]
                     if p["name"] == "topic"): b["entry"][1]["resource"] for b in bundles}
    assert by_topic[ADMITTED]["status"] == "in-progress"
    assert by_topic[DISCHARGED]["status"] == "finished"
    assert by_topic[ADMITTED]["id"] == by_topic[DISCHARGED]["id"]
    writes = [r for r in got if r.method == "PUT"]
    assert [orjson.loads(r.body)["status"] for r in writes][-1] == "finished"
    assert all(r.path == f"/hook/Encounter/{by_topic[ADMITTED]['id']}" for r in writes)
