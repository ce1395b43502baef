"""The event log: outbox rows become per-subscription events, gap-free, exactly once, in
commit order, and survive router restarts; old events are pruned by retention."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.coordination.runner import workflow_runner
from gateway.store.db import Database
from gateway.store.outbox import GAP_GRACE_SECONDS
from gateway.store.tables import outbox_table, sync_event_table, sync_subscription_table
from gateway.store.uow import UnitOfWork
from gateway.sync.router import Router, prune, prune_outbox
from tests.conftest import BACKEND
from tests.integration.sync_support import encounter, new_patient, subscription

E = sync_event_table.c


def _events(db: Database, subscription_id: str) -> list[tuple[int, str, str, int]]:
    S = sync_subscription_table.c
    with db.engine.connect() as conn:
        sid = conn.execute(select(S.sid).where(S.resource_id == subscription_id)).scalar_one()
        rows = conn.execute(select(E.event_number, E.type, E.id, E.version_id)
                            .where(E.sid == sid).order_by(E.event_number))
        return [tuple(r) for r in rows]


def _subscribe(api: TestClient, criteria: str) -> str:
    response = api.post("/fhir/Subscription",
                        json=subscription("http://127.0.0.1:9/hook", criteria))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_events_are_numbered_without_gaps_per_subscription(sync_app: Any,
                                                           api: TestClient) -> None:
    db = sync_app.state.database
    alice, bob = new_patient(api), new_patient(api)
    before = api.post("/fhir/Encounter", json=encounter(alice)).json()["id"]
    inpatient = _subscribe(api, f"Encounter?patient=Patient/{alice}&class=IMP")
    everything = _subscribe(api, "Encounter")
    e1 = api.post("/fhir/Encounter", json=encounter(alice)).json()["id"]
    api.post("/fhir/Encounter", json=encounter(alice, "AMB"))
    api.post("/fhir/Encounter", json=encounter(bob))
    api.put(f"/fhir/Encounter/{e1}", json=dict(encounter(alice, status="finished"), id=e1))
    assert Router(db).run_until_idle() > 0
    assert [(n, i, v) for n, _, i, v in _events(db, inpatient)] == [(1, e1, 1), (2, e1, 2)]
    numbers = [n for n, *_ in _events(db, everything)]
    assert numbers == [1, 2, 3, 4]  # changes before the Subscription are not in its log
    assert before not in {i for _, _, i, _ in _events(db, everything)}


def test_routing_is_exactly_once_across_router_restarts(sync_app: Any,
                                                        api: TestClient) -> None:
    db = sync_app.state.database
    everything = _subscribe(api, "Encounter")
    alice = new_patient(api)
    for _ in range(3):
        api.post("/fhir/Encounter", json=encounter(alice))
    Router(db, batch_size=2).route_once()  # a partial run, then a "restart"
    Router(db, batch_size=2).run_until_idle()
    Router(db).run_until_idle()
    for _ in range(2):
        api.post("/fhir/Encounter", json=encounter(alice))
    Router(db).run_until_idle()
    assert [n for n, *_ in _events(db, everything)] == [1, 2, 3, 4, 5]


def test_criteria_matching_agrees_with_search(sync_app: Any, api: TestClient) -> None:
    """The subscription's events are exactly what the same query finds through the API."""
    db = sync_app.state.database
    alice, bob = new_patient(api), new_patient(api)
    criteria = f"Encounter?patient=Patient/{alice}&class=IMP,EMER&status:not=cancelled"
    sub = _subscribe(api, criteria)
    for patient, klass, status in [(alice, "IMP", "in-progress"), (alice, "EMER", "arrived"),
                                   (alice, "AMB", "in-progress"), (bob, "IMP", "in-progress"),
                                   (alice, "IMP", "cancelled")]:
        api.post("/fhir/Encounter", json=encounter(patient, klass, status))
    Router(db).run_until_idle()
    found = api.get("/fhir/" + criteria).json()
    searched = {e["resource"]["id"] for e in found.get("entry", [])}
    assert len(searched) == 2
    assert {i for _, _, i, _ in _events(db, sub)} == searched


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serializes writers: no gaps")
def test_a_later_commit_does_not_overtake_an_open_transaction(sync_app: Any,
                                                              api: TestClient) -> None:
    """PostgreSQL: a transaction holding a lower outbox seq commits after a higher one. The
    router neither skips its row nor holds writers up: it routes nothing past the gap at
    first, then, once the gap has lasted ``GAP_GRACE_SECONDS``, waits for the open
    transaction, and passes a rolled-back gap for good."""
    db = sync_app.state.database
    everything = _subscribe(api, "Encounter")
    alice = new_patient(api)
    Router(db).run_until_idle()
    with UnitOfWork(db) as rolled_back:  # a gap that never fills
        rolled_back.repository.create(encounter(alice))
    slow = UnitOfWork(db).__enter__()
    early = slow.repository.create(encounter(alice)).resource.id
    late = api.post("/fhir/Encounter", json=encounter(alice)).json()["id"]
    router = Router(db)
    assert router.run_until_idle() == 0  # the later commit does not overtake
    assert _events(db, everything) == []
    time.sleep(GAP_GRACE_SECONDS)
    routed = threading.Thread(target=router.run_until_idle)
    routed.start()
    time.sleep(0.3)
    assert routed.is_alive()  # waiting for the open transaction, not skipping its row
    slow.commit()
    slow.__exit__(None, None, None)
    routed.join(timeout=10)
    router.run_until_idle()
    assert [(n, i) for n, _, i, _ in _events(db, everything)] == [(1, early), (2, late)]


def test_retention_prunes_old_events_only(sync_app: Any, api: TestClient) -> None:
    db = sync_app.state.database
    everything = _subscribe(api, "Encounter")
    alice = new_patient(api)
    api.post("/fhir/Encounter", json=encounter(alice))
    api.post("/fhir/Encounter", json=encounter(alice))
    Router(db).run_until_idle()
    with db.engine.begin() as conn:
        conn.execute(sync_event_table.update().where(E.event_number == 1)
                     .values(created_at=time.time() - 31 * 86400))
        assert prune(conn, time.time() - 32 * 86400) == 0
    router = Router(db, retention_seconds=30 * 86400)
    assert router.prune_if_due() == 1  # also when the outbox is idle
    assert router.prune_if_due(every=0) == 0
    assert [n for n, *_ in _events(db, everything)] == [2]


def test_outbox_rows_of_other_sources_are_routed(sync_app: Any, api: TestClient) -> None:
    """Anything the repository wrote reaches the log, whichever path wrote it."""
    db = sync_app.state.database
    everything = _subscribe(api, "Encounter")
    alice = new_patient(api)
    with UnitOfWork(db) as uow:
        created = uow.repository.create(encounter(alice)).resource.id
        uow.commit()
    with db.engine.connect() as conn:
        assert conn.execute(select(outbox_table.c.seq)).first() is not None
    Router(db).run_until_idle()
    assert [i for _, _, i, _ in _events(db, everything)] == [created]


def _prune_old(db: Database) -> int:
    with db.engine.begin() as conn:
        conn.execute(outbox_table.update().values(created_at=time.time() - 31 * 86400))
        return prune_outbox(conn, time.time() - 30 * 86400)


def _outbox_types(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(outbox_table.c.type)
                                 .order_by(outbox_table.c.seq)).scalars())


def test_retention_prunes_routed_outbox_rows_only(sync_app: Any, api: TestClient) -> None:
    db = sync_app.state.database
    workflows = workflow_runner(db, sync_app.state.settings)
    alice = new_patient(api)
    api.post("/fhir/Encounter", json=encounter(alice))
    Router(db).run_until_idle()
    workflows.run_until_idle()
    api.post("/fhir/Encounter", json=encounter(alice))  # committed, not routed yet
    workflows.run_until_idle()
    assert _prune_old(db) == 2  # Patient, first Encounter
    assert _outbox_types(db) == ["Encounter"]
    assert Router(db).run_until_idle() == 1  # the unrouted row is still routed


def test_retention_keeps_rows_the_workflow_runner_has_not_read(sync_app: Any,
                                                                api: TestClient) -> None:
    db = sync_app.state.database
    workflows = workflow_runner(db, sync_app.state.settings)
    alice = new_patient(api)
    workflows.run_until_idle()
    api.post("/fhir/Encounter", json=encounter(alice))
    Router(db).run_until_idle()  # routed, but not yet seen by the workflow runner
    assert _prune_old(db) == 1  # the Patient only
    assert _outbox_types(db) == ["Encounter"]
    assert workflows.run_until_idle() == 1
    assert _prune_old(db) == 1
