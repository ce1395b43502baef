"""Delivery end to end: changes made through the FHIR API reach real HTTP receivers on
127.0.0.1 at least once and in order per patient, through receiver outages, worker restarts
and crashes, with one dead or poisoned destination never holding up the others."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.api.app import create_app
from gateway.cli import app as cli
from gateway.config import get_settings
from gateway.sync import queue
from gateway.sync.router import Router
from tests.conftest import free_port
from tests.integration.sync_support import (
    Receiver,
    ReceiverServer,
    WorkerThread,
    encounter,
    fast_settings,
    new_patient,
    subscription,
    wait_for,
)


def _subscribe(api: TestClient, url: str, criteria: str = "Encounter") -> str:
    response = api.post("/fhir/Subscription", json=subscription(url, criteria))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _active(api: TestClient, subscription_id: str) -> bool:
    return api.get(f"/fhir/Subscription/{subscription_id}").json()["status"] == "active"


def _numbers(server: ReceiverServer) -> list[int]:
    """Event numbers of the notifications a receiver accepted, in arrival order."""
    return [int(r.headers["x-gateway-event-number"]) for r in server.receiver.accepted()]


def test_receiver_outage_then_backlog_arrives_in_order(sync_app: Any, api: TestClient,
                                                       receiver: ReceiverServer) -> None:
    sub = _subscribe(api, receiver.url)
    alice = new_patient(api)
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _active(api, sub), what="handshake")
        receiver.receiver.status = 500  # the receiver goes down
        for _ in range(5):
            api.post("/fhir/Encounter", json=encounter(alice))
        wait_for(lambda: len(receiver.receiver.requests) >= 4, what="failed attempts")
        assert _numbers(receiver) == []
        receiver.receiver.status = 200  # ...and comes back
        wait_for(lambda: len(_numbers(receiver)) >= 5, what="backlog")
    assert _numbers(receiver) == [1, 2, 3, 4, 5]
    first = api.get("/sync/deliveries", params={"subscription": sub}).json()[-2]
    assert first["status"] == "delivered" and first["attempts"] >= 2
    evidence = api.get(f"/sync/deliveries/{first['id']}").json()["attempts"]
    assert [a["http_status"] for a in evidence][-1] == 200
    assert {a["http_status"] for a in evidence[:-1]} == {500}
    assert all(a["latency_ms"] >= 0 and a["url"] == receiver.url for a in evidence)


def test_a_dead_destination_does_not_hold_up_others(sync_app: Any, api: TestClient,
                                                    receiver: ReceiverServer) -> None:
    with ReceiverServer(Receiver()) as dying:
        dead = _subscribe(api, dying.url)
        live = _subscribe(api, receiver.url)
        alice = new_patient(api)
        with WorkerThread(sync_app.state.database, sync_app.state.settings):
            wait_for(lambda: _active(api, dead) and _active(api, live), what="handshakes")
            dying.receiver.status = 503
            for _ in range(3):
                api.post("/fhir/Encounter", json=encounter(alice))
            wait_for(lambda: len(_numbers(receiver)) == 3, what="live receiver")
            assert _numbers(dying) == []
            dying.receiver.status = 200
            wait_for(lambda: len(_numbers(dying)) == 3, what="dead receiver recovering")
    assert _numbers(receiver) == _numbers(dying) == [1, 2, 3]


class _Hanging(Receiver):
    """Answers quickly until ``hang`` is set, then only after the sender's timeout."""

    hang: bool = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.hang:
            await asyncio.sleep(2.5)
        await super().__call__(scope, receive, send)


def test_a_hanging_destination_does_not_slow_others(database_url: str,
                                                    receiver: ReceiverServer) -> None:
    settings = fast_settings(database_url, delivery_timeout_seconds=2.0)
    application = create_app(settings)
    db = application.state.database
    hanging = _Hanging()
    try:
        with TestClient(application) as client, ReceiverServer(hanging) as slow, \
                WorkerThread(db, settings):
            stuck, live = _subscribe(client, slow.url), _subscribe(client, receiver.url)
            wait_for(lambda: _active(client, stuck) and _active(client, live),
                     what="handshakes")
            hanging.hang = True
            alice = new_patient(client)
            started = time.monotonic()
            for _ in range(3):
                client.post("/fhir/Encounter", json=encounter(alice))
            wait_for(lambda: _numbers(receiver) == [1, 2, 3], what="the live receiver")
            assert time.monotonic() - started < 1.5  # not held up by 2 s timeouts
    finally:
        db.dispose()


def test_order_is_per_patient_and_patients_do_not_wait_for_each_other(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    sub = _subscribe(api, receiver.url)
    alice, bob = new_patient(api), new_patient(api)
    stuck = {"id": ""}

    def answer(request: Any) -> int:  # alice's first notification fails for a while
        focus = request.headers.get("x-gateway-focus", "")
        return 500 if stuck["id"] and focus.startswith(f"Encounter/{stuck['id']}/") else 200

    receiver.receiver.respond = answer
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        wait_for(lambda: _active(api, sub), what="handshake")
        stuck["id"] = api.post("/fhir/Encounter", json=encounter(alice)).json()["id"]
        api.post("/fhir/Encounter", json=encounter(alice))
        for _ in range(2):
            api.post("/fhir/Encounter", json=encounter(bob))
        wait_for(lambda: len(_numbers(receiver)) == 2, what="bob's notifications")
        assert _numbers(receiver) == [3, 4]  # bob's; alice's second waits behind her first
        stuck["id"] = ""
        wait_for(lambda: len(_numbers(receiver)) == 4, what="alice's notifications")
    assert _numbers(receiver) == [3, 4, 1, 2]


def test_worker_restart_loses_nothing(sync_app: Any, api: TestClient,
                                      receiver: ReceiverServer) -> None:
    db, settings = sync_app.state.database, sync_app.state.settings
    sub = _subscribe(api, receiver.url)
    alice = new_patient(api)
    with WorkerThread(db, settings):
        wait_for(lambda: _active(api, sub), what="handshake")
        receiver.receiver.status = 500
        for _ in range(3):
            api.post("/fhir/Encounter", json=encounter(alice))
        wait_for(lambda: len(receiver.receiver.requests) >= 2, what="failed attempt")
    for _ in range(3):  # changes while no worker runs at all
        api.post("/fhir/Encounter", json=encounter(alice))
    receiver.receiver.status = 200
    with WorkerThread(db, settings):
        wait_for(lambda: len(_numbers(receiver)) >= 6, what="everything after restart")
    assert _numbers(receiver) == [1, 2, 3, 4, 5, 6]


def test_a_crashed_worker_s_claims_are_sent_again(database_url: str,
                                                  receiver: ReceiverServer) -> None:
    settings = fast_settings(database_url, delivery_lease_seconds=0.5)
    application = create_app(settings)
    db = application.state.database
    try:
        with TestClient(application) as client:
            sub = _subscribe(client, receiver.url)
            alice = new_patient(client)
            with WorkerThread(db, settings):
                wait_for(lambda: _active(client, sub), what="handshake")
            client.post("/fhir/Encounter", json=encounter(alice))
            Router(db).run_until_idle()
            claimed = queue.claim(db, 10, lease=0.5)  # ...and the worker dies here
            assert len(claimed) == 1
            with WorkerThread(db, settings):
                wait_for(lambda: _numbers(receiver) == [1], what="redelivery after lease")
    finally:
        db.dispose()


def test_a_poison_event_is_given_up_and_the_queue_moves_on(database_url: str,
                                                           receiver: ReceiverServer) -> None:
    settings = fast_settings(database_url, delivery_client_error_attempts=3)
    application = create_app(settings)
    db = application.state.database
    poison = {"id": ""}
    receiver.receiver.respond = lambda r: 400 if poison["id"] and poison["id"] in \
        r.headers.get("x-gateway-focus", "") else 200
    try:
        with TestClient(application) as client, WorkerThread(db, settings):
            sub = _subscribe(client, receiver.url)
            alice = new_patient(client)
            wait_for(lambda: _active(client, sub), what="handshake")
            poison["id"] = client.post("/fhir/Encounter", json=encounter(alice)).json()["id"]
            client.post("/fhir/Encounter", json=encounter(alice))
            wait_for(lambda: _numbers(receiver) == [2], what="the event after the poison")
            failed = client.get("/sync/deliveries", params={"status": "failed"}).json()
            assert [d["attempts"] for d in failed] == [3]
            assert _active(client, sub)  # the destination itself is fine
    finally:
        db.dispose()


def test_giving_up_marks_the_subscription_in_error_and_retry_resumes(
        database_url: str, receiver: ReceiverServer) -> None:
    settings = fast_settings(database_url, delivery_give_up_seconds=0.3)
    application = create_app(settings)
    db = application.state.database
    try:
        with TestClient(application) as client, WorkerThread(db, settings):
            sub = _subscribe(client, receiver.url)
            alice = new_patient(client)
            wait_for(lambda: _active(client, sub), what="handshake")
            receiver.receiver.status = 503
            client.post("/fhir/Encounter", json=encounter(alice))
            wait_for(lambda: client.get(f"/fhir/Subscription/{sub}").json()["status"]
                     == "error", what="error status")
            failed = client.get("/sync/deliveries", params={"status": "failed"}).json()
            assert len(failed) == 1
            receiver.receiver.status = 200
            retried = client.post(f"/sync/deliveries/{failed[0]['id']}/$retry")
            assert retried.status_code == 200 and retried.json()["status"] == "pending"
            wait_for(lambda: _numbers(receiver) == [1], what="delivery after $retry")
            assert _active(client, sub)
    finally:
        db.dispose()


def test_two_workers_deliver_each_notification_once_in_order(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    db, settings = sync_app.state.database, sync_app.state.settings
    sub = _subscribe(api, receiver.url)
    patients = [new_patient(api) for _ in range(3)]
    with WorkerThread(db, settings), WorkerThread(db, settings):
        wait_for(lambda: _active(api, sub), what="handshake")
        for round_ in range(4):
            for patient in patients:
                api.post("/fhir/Encounter", json=encounter(patient, status="planned"
                                                           if round_ == 0 else "in-progress"))
        wait_for(lambda: len(_numbers(receiver)) >= 12, what="all notifications")
        time.sleep(0.2)
    got = receiver.receiver.accepted()
    assert sorted(_numbers(receiver)) == list(range(1, 13))  # each exactly once
    ids = [r.headers["x-gateway-notification-id"] for r in got]
    assert len(set(ids)) == len(ids)
    deliveries = api.get("/sync/deliveries", params={"subscription": sub}).json()
    by_number = {d["event_number"]: d["focus"] for d in deliveries if d["event_number"]}
    for patient in patients:  # per patient, in event order
        mine = [int(r.headers["x-gateway-event-number"]) for r in got
                if patient in _encounter_patient(api, by_number,
                                                 int(r.headers["x-gateway-event-number"]))]
        assert mine == sorted(mine) and len(mine) == 4


def _encounter_patient(api: TestClient, by_number: dict[int, str], number: int) -> str:
    focus = by_number[number].split("/_history")[0]
    return str(api.get(f"/fhir/{focus}").json()["subject"]["reference"])


def test_serve_delivers_in_process(database_url: str, receiver: ReceiverServer) -> None:
    """`gateway serve` runs a worker in the app's lifespan by default."""
    application = create_app(fast_settings(database_url, delivery_in_process=True))
    try:
        with TestClient(application) as client:
            sub = _subscribe(client, receiver.url)
            wait_for(lambda: _active(client, sub), what="handshake")
            client.post("/fhir/Encounter", json=encounter(new_patient(client)))
            wait_for(lambda: _numbers(receiver) == [1], what="notification")
    finally:
        application.state.database.dispose()


def test_deliveries_api_and_cli(database_url: str, receiver: ReceiverServer,
                                monkeypatch: Any) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/hook"
    settings = fast_settings(database_url)
    application = create_app(settings)
    db = application.state.database
    try:
        with TestClient(application) as client:
            sub = _subscribe(client, unreachable)
            with WorkerThread(db, settings):
                wait_for(lambda: client.get(f"/fhir/Subscription/{sub}").json()["status"]
                         == "error", what="handshake failure")
            listed = client.get("/sync/deliveries").json()
            assert [(d["kind"], d["status"]) for d in listed] == [("handshake", "failed")]
            assert "ConnectError" in listed[0]["last_error"]
            bad = client.get("/sync/deliveries", params={"status": "lost"})
            assert bad.status_code == 400
            assert bad.json()["issue"][0]["expression"] == ["status"]
            missing = client.post("/sync/deliveries/999999/$retry")
            assert missing.status_code == 404
            assert missing.json()["resourceType"] == "OperationOutcome"
            monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
            get_settings.cache_clear()
            runner = CliRunner()
            shown = runner.invoke(cli, ["deliveries", "list", "--status", "failed"])
            assert shown.exit_code == 0 and f"Subscription/{sub}" in shown.output
            retried = runner.invoke(cli, ["deliveries", "retry", str(listed[0]["id"])])
            assert retried.exit_code == 0 and "pending" in retried.output
            assert client.get(f"/fhir/Subscription/{sub}").json()["status"] == "requested"
            assert runner.invoke(cli, ["deliveries", "retry", "999999"]).exit_code == 2
    finally:
        get_settings.cache_clear()
        db.dispose()
