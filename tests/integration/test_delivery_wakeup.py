"""Workers wake up when a change is committed, not at their next poll: with the poll interval
at 30 s, notifications still arrive within seconds -- through LISTEN/NOTIFY for a worker
process of its own on PostgreSQL, and directly for the worker inside the committing
process."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BACKEND
from tests.integration.sync_support import (
    ReceiverServer,
    WorkerThread,
    encounter,
    new_patient,
    subscription,
    wait_for,
    worker_process,
)

SLOW_POLL = 30.0  # seconds; every wait below is far shorter


def _deliver_two(api: TestClient, receiver: ReceiverServer) -> None:
    sid = api.post("/fhir/Subscription",
                   json=subscription(receiver.url, "Encounter")).json()["id"]
    wait_for(lambda: api.get(f"/fhir/Subscription/{sid}").json()["status"] == "active",
             timeout=SLOW_POLL / 3, what="the handshake, woken by the Subscription's commit")
    patient = new_patient(api)
    for expected in (1, 2):
        api.post("/fhir/Encounter", json=encounter(patient))
        wait_for(lambda n=expected: len(receiver.receiver.accepted()) == n,
                 timeout=SLOW_POLL / 3, what=f"notification {expected} before the next poll")


@pytest.mark.skipif(BACKEND != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
def test_a_worker_process_is_woken_by_notify(database_url: str, sync_app: Any,
                                             api: TestClient,
                                             receiver: ReceiverServer) -> None:
    with worker_process(database_url, GATEWAY_DELIVERY_POLL_SECONDS=str(SLOW_POLL)):
        wait_for(lambda: _listening(api), timeout=SLOW_POLL / 3, what="the worker's LISTEN")
        _deliver_two(api, receiver)


def test_the_in_process_worker_is_woken_by_the_commit(sync_app: Any, api: TestClient,
                                                      receiver: ReceiverServer) -> None:
    settings = sync_app.state.settings.model_copy(update={"delivery_poll_seconds": SLOW_POLL})
    with WorkerThread(sync_app.state.database, settings):
        _deliver_two(api, receiver)


def _listening(api: TestClient) -> bool:
    """Whether some session LISTENs on the outbox channel (pg_listening_channels is per
    session, so look at the server's activity instead)."""
    from sqlalchemy import text

    with api.app.state.database.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN gateway_outbox%'"
        )).scalar())


def test_in_process_listeners_are_told_after_the_commit_is_visible(
        sync_app: Any, api: TestClient) -> None:
    """A listener reading on a connection of its own sees the change it was told about
    (told after COMMIT completed, not as it starts)."""
    from sqlalchemy import func, select

    from gateway.store.tables import outbox_table

    database = sync_app.state.database
    seen: list[int] = []

    def listener() -> None:
        with database.engine.connect() as conn:
            seen.append(conn.execute(select(func.count()).select_from(outbox_table)
                                     ).scalar_one())

    database.outbox_listeners.append(listener)
    try:
        for _ in range(3):
            new_patient(api)
    finally:
        database.outbox_listeners.remove(listener)
    assert seen == [1, 2, 3]
