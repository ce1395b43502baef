"""Partner push keeps the partner's newer versions: a delivery of a version the partner has
already (or has a newer one of) is skipped, not sent; a local edit of a pulled resource is
pushed even when it keeps the partner's meta.source; the partner's copy is never recorded
as older than it is; and recording one delivery's bookkeeping cannot fail another's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.store.tables import remote_resource_table
from gateway.sync import queue, remote
from gateway.sync.router import Router
from gateway.sync.worker import policy_from
from tests.conftest import LiveServer
from tests.integration.sync_support import WorkerThread, new_patient, wait_for

PLAN = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
        "title": "Diabetes programme"}


@pytest.fixture
def partner(partner_gateway: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=partner_gateway.base) as client:
        yield client


def _register(api: TestClient, base: str, direction: str = "both") -> None:
    added = api.post("/sync/partners", json={"name": "b", "base_url": base,
                                             "direction": direction, "types": ["CarePlan"]})
    assert added.status_code == 201, added.text


def _deliveries(api: TestClient) -> list[dict[str, Any]]:
    return [d for d in api.get("/sync/deliveries", params={"_count": 1000}).json()
            if d["subscription"] == "Partner/b"]


def _versions(client: Any, path: str) -> int:
    return int(client.get(f"{path}/_history").json()["total"])


def _plan(api: TestClient) -> dict[str, Any]:
    return dict(PLAN, subject={"reference": f"Patient/{new_patient(api)}"})


def _push_one(api: TestClient, partner: httpx.Client) -> tuple[str, str]:
    """A local CarePlan pushed to the partner: (local path, partner path)."""
    local = api.post("/fhir/CarePlan", json=_plan(api)).json()
    pushed = wait_for(lambda: partner.get("/CarePlan").json().get("entry"), what="push")
    return f"/fhir/CarePlan/{local['id']}", f"/CarePlan/{pushed[0]['resource']['id']}"


def _pushing_worker(sync_app: Any, api: TestClient, partner_gateway: LiveServer
                    ) -> WorkerThread:
    """Partner "b" registered both ways, and a worker that pushes but only pulls when
    asked (``$pull``)."""
    _register(api, partner_gateway.base)
    settings = sync_app.state.settings.model_copy(update={"partner_pull_seconds": 3600})
    return WorkerThread(sync_app.state.database, settings)


def _change_at_partner_and_pull(api: TestClient, partner: httpx.Client,
                                copy_path: str) -> None:
    """The partner edits its copy; pulling brings that version here."""
    changed = dict(partner.get(copy_path).json(), title="Changed at the partner")
    assert partner.put(copy_path, json=changed).status_code == 200
    assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 1}


def test_an_old_delivery_sent_again_does_not_overwrite_the_partners_newer_version(
        sync_app: Any, api: TestClient, partner_gateway: LiveServer,
        partner: httpx.Client) -> None:
    with _pushing_worker(sync_app, api, partner_gateway):
        path, copy_path = _push_one(api, partner)
        _change_at_partner_and_pull(api, partner, copy_path)
        [first] = _deliveries(api)
        assert api.post(f"/sync/deliveries/{first['id']}/$retry").status_code == 200
        again = wait_for(lambda: [d for d in _deliveries(api) if d["status"] != "pending"
                                  and d["attempts"]], what="the old delivery handled")
    assert again[0]["status"] == "skipped", again
    assert partner.get(copy_path).json()["title"] == "Changed at the partner"
    assert _versions(partner, copy_path) == 2
    assert api.get(path).json()["title"] == "Changed at the partner"
    assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 0}
    assert len(_deliveries(api)) == 1  # the pulled version was not echoed


def test_a_local_edit_keeping_the_partners_source_is_pushed(
        sync_app: Any, api: TestClient, partner_gateway: LiveServer,
        partner: httpx.Client) -> None:
    with _pushing_worker(sync_app, api, partner_gateway):
        path, copy_path = _push_one(api, partner)
        _change_at_partner_and_pull(api, partner, copy_path)
        pulled = api.get(path).json()
        assert pulled["meta"]["source"].startswith(partner_gateway.base)
        edited = api.put(path, json=dict(pulled, status="on-hold")).json()
        assert edited["meta"]["source"] == pulled["meta"]["source"]
        wait_for(lambda: partner.get(copy_path).json()["status"] == "on-hold",
                 what="the local edit pushed")
    assert _versions(partner, copy_path) == 3
    assert api.get("/sync/conflicts").json() == []


def test_the_partners_copy_is_never_recorded_older(sync_app: Any, api: TestClient) -> None:
    database = sync_app.state.database
    with database.write() as conn:
        remote.remember(conn, 7, 11, "CarePlan", "r1", "5", 5)
        remote.remember(conn, 7, 11, "CarePlan", "r1", "3", 3)  # a late answer
        assert remote.remembered(conn, 7, 11) == ("r1", "5")
        assert remote.in_sync(conn, 7, 11, 5)
        remote.remember(conn, 7, 11, "CarePlan", "r1", "6", 6)
        assert remote.remembered(conn, 7, 11) == ("r1", "6")


class _LongIds:
    """A partner answering every write with an id and version longer than FHIR allows."""

    def __init__(self) -> None:
        self.writes = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        self.writes += 1
        body = {"resourceType": "CarePlan", "id": "r" * 100, "meta": {"versionId": "9" * 80}}
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/fhir+json")]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def test_a_partner_answering_overlong_ids_is_recorded_delivered(
        sync_app: Any, api: TestClient) -> None:
    fake = _LongIds()
    with LiveServer(fake) as server, WorkerThread(sync_app.state.database,
                                                  sync_app.state.settings):
        _register(api, server.base, "push")
        api.post("/fhir/CarePlan", json=_plan(api))
        delivered = wait_for(lambda: [d for d in _deliveries(api)
                                      if d["status"] == "delivered"], what="recorded")
    assert len(delivered) == 1 and fake.writes == 1
    with sync_app.state.database.engine.connect() as conn:
        row = conn.execute(select(remote_resource_table)).one()
    assert (row.remote_id, row.remote_version) == ("r" * 64, "9" * 64)


def test_one_failing_bookkeeping_step_does_not_undo_the_others(
        sync_app: Any, api: TestClient) -> None:
    database = sync_app.state.database
    _register(api, "http://127.0.0.1:9/fhir", "push")
    for title in ("one", "two", "three"):
        api.post("/fhir/CarePlan", json=dict(_plan(api), title=title))
    Router(database).run_until_idle()
    jobs = queue.claim(database, 10, 30.0)
    assert len(jobs) == 3
    done: list[int] = []

    def failing(_conn: Any) -> None:
        raise RuntimeError("bookkeeping failed")

    def after(job: queue.Job) -> Any:
        return failing if job is jobs[1] else lambda _conn: done.append(job.delivery_id)

    attempts = [(job, queue.Outcome(0.0, 1.0, "http://p", 200, None, None, after(job)))
                for job in jobs]
    statuses = queue.record_many(database, attempts, policy_from(sync_app.state.settings))
    assert statuses == ["delivered"] * 3
    assert sorted(done) == sorted(j.delivery_id for j in (jobs[0], jobs[2]))
    assert {d["status"] for d in _deliveries(api)} == {"delivered"}
