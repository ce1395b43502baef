"""Partner pull: a partner's change never overwrites a local edit not yet pushed (a
conflict, reported); malformed partner resources are recorded and passed over; the mark is
the newest instant, not the largest text; one worker at a time pulls a partner, its lease
renewed while it works and released when done."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.api.app import create_app
from gateway.cli import app as cli
from gateway.config import get_settings
from gateway.sync.worker import DeliveryWorker
from tests.conftest import LiveServer
from tests.integration.sync_support import WorkerThread, fast_settings, new_patient, wait_for

PLAN = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
        "title": "Diabetes programme"}


class FakePartner:
    """A partner FHIR server answering searches with fixed pages of entries (``?page=n``
    links to the next), each after ``delay`` seconds; it records every query."""

    def __init__(self, pages: list[list[Any]], delay: float = 0.0) -> None:
        self.pages, self.delay = pages, delay
        self.queries: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = dict(parse_qsl(scope["query_string"].decode()))
        self.queries.append(query)
        await asyncio.sleep(self.delay)
        index = int(query.get("page", 0))
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "entry": self.pages[index] if index < len(self.pages)
                                  else []}
        if index + 1 < len(self.pages):
            host, port = scope["server"]
            bundle["link"] = [{"relation": "next",
                               "url": f"http://{host}:{port}{scope['path']}?page={index + 1}"}]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/fhir+json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(bundle)})


def _plan(remote_id: str, updated: str, **fields: Any) -> dict[str, Any]:
    return {"resource": dict(PLAN, id=remote_id, subject={"display": "Ada"},
                             meta={"versionId": "1", "lastUpdated": updated}, **fields),
            "search": {"mode": "match"}}


def _register(api: Any, base: str, direction: str = "pull") -> None:
    added = api.post("/sync/partners", json={"name": "b", "base_url": base,
                                             "direction": direction, "types": ["CarePlan"]})
    assert added.status_code == 201, added.text


@pytest.fixture
def partner(partner_gateway: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=partner_gateway.base) as client:
        yield client


def test_a_partner_change_meeting_an_unpushed_local_edit_is_a_conflict(
        sync_app: Any, api: TestClient, partner_gateway: LiveServer, partner: httpx.Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _register(api, partner_gateway.base, "both")
    plan = dict(PLAN, subject={"reference": f"Patient/{new_patient(api)}"})
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        local = api.post("/fhir/CarePlan", json=plan).json()
        pushed = wait_for(lambda: partner.get("/CarePlan").json().get("entry"), what="push")
    path, copy_path = f"/fhir/CarePlan/{local['id']}", f"/CarePlan/{pushed[0]['resource']['id']}"
    # No worker now: the local edit is not pushed.
    edited = {k: v for k, v in local.items() if k != "meta"}
    assert api.put(path, json=dict(edited, title="Edited here")).status_code == 200
    assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 0}  # B has not moved
    assert api.get("/sync/conflicts").json() == []
    changed = dict(partner.get(copy_path).json(), title="Edited at the partner")
    assert partner.put(copy_path, json=changed).status_code == 200
    for _ in range(2):  # the second pull sees the same version again (ge its mark)
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 0}
    assert api.get(path).json()["title"] == "Edited here"
    [conflict] = api.get("/sync/conflicts", params={"partner": "b"}).json()
    assert conflict["direction"] == "pull"
    assert conflict["focus"] == f"CarePlan/{local['id']}/_history/2"
    assert (conflict["remote_id"], conflict["expected_version"]) == (copy_path[10:], "2")
    assert conflict["http_status"] is None and conflict["delivery_id"] is None
    assert conflict["destination"] == f"{partner_gateway.base}{copy_path}"

    monkeypatch.setenv("GATEWAY_DATABASE_URL", sync_app.state.settings.database_url)
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(cli, ["partners", "conflicts"])
    finally:
        get_settings.cache_clear()
    assert shown.exit_code == 0 and "HTTP -" in shown.output and "pull" in shown.output


def test_malformed_partner_resources_are_recorded_and_passed_over(
        sync_app: Any, api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    page = ["not an entry", {"search": {"mode": "match"}},
            _plan("bad-identifier", "2024-05-01T08:00:00Z", identifier="urn:x|1"),
            _plan("x" * 80, "2024-05-01T08:00:01Z"),
            _plan("bad-meta", "yesterday"),
            _plan("good", "2024-05-01T08:00:02Z", title="Arrived")]
    fake = FakePartner([page, [_plan("later", "2024-05-01T08:00:03Z")]])
    with LiveServer(fake) as server:
        _register(api, server.base)
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 2}
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 0}
    titles = sorted(e["resource"]["title"] for e in api.get("/fhir/CarePlan").json()["entry"])
    assert titles == ["Arrived", "Diabetes programme"]
    failures = api.get("/sync/pull-failures", params={"partner": "b"}).json()
    assert sorted((f["remote_id"] or "-", f["error"].split(" ")[0]) for f in failures) == [
        ("-", "the"), ("bad-identifier", "identifier"), ("bad-meta", "meta.lastUpdated"),
        ("x" * 64, "the")]
    assert {f["partner"] for f in failures} == {"Partner/b"}
    assert [q.get("_lastUpdated") for q in fake.queries if "page" not in q] == [
        None, "ge2024-05-01T08:00:03Z"]

    monkeypatch.setenv("GATEWAY_DATABASE_URL", sync_app.state.settings.database_url)
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(cli, ["partners", "failures", "--partner", "b"])
    finally:
        get_settings.cache_clear()
    assert shown.exit_code == 0 and "Partner/b  CarePlan/bad-meta" in shown.output


def test_the_mark_is_the_newest_instant_not_the_largest_text(api: TestClient) -> None:
    fake = FakePartner([[_plan("a", "2024-05-01T09:00:00Z"),
                         _plan("b", "2024-05-01T09:00:00.5Z"),
                         _plan("c", "2024-05-01T10:00:00+02:00")]])
    with LiveServer(fake) as server:
        _register(api, server.base)
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 3}
        fake.pages = [[_plan("d", "2024-05-01T08:30:00Z")]]  # older: the mark stays
        api.post("/sync/partners/b/$pull")
        api.post("/sync/partners/b/$pull")
    marks = [q["_lastUpdated"] for q in fake.queries[1:]]
    assert marks == ["ge2024-05-01T09:00:00.5Z"] * 2
    assert datetime.fromisoformat(marks[0][2:]) == datetime(2024, 5, 1, 9, 0, 0, 500000, UTC)


def test_one_worker_at_a_time_pulls_a_partner(database_url: str) -> None:
    settings = fast_settings(database_url, delivery_timeout_seconds=0.7)  # lease 2.4 s
    application = create_app(settings)
    pages = [[_plan(f"p{n}", f"2024-05-01T08:00:0{n}Z")] for n in range(8)]
    fake = FakePartner(pages, delay=0.5)  # 4 s in all: longer than one lease
    answers: list[int] = []
    try:
        with LiveServer(application) as gateway, LiveServer(fake) as server, \
                httpx.Client(base_url=gateway.base.removesuffix("/fhir"), timeout=30) as http:
            _register(http, server.base)
            first = threading.Thread(target=lambda: answers.append(
                http.post("/sync/partners/b/$pull").status_code))
            first.start()
            wait_for(lambda: len(fake.queries) >= 6, what="a pull past its first lease")
            during = http.post("/sync/partners/b/$pull")
            worker = DeliveryWorker(application.state.database, settings)
            scheduled = asyncio.run(_pull_due(worker))
            first.join(30)
            assert (during.status_code, scheduled, answers) == (409, 0, [200])
            assert "being pulled" in during.json()["issue"][0]["diagnostics"]
            assert len(fake.queries) == 8
            assert http.post("/sync/partners/b/$pull").status_code == 200  # released
    finally:
        application.state.database.dispose()


async def _pull_due(worker: DeliveryWorker) -> int:
    async with httpx.AsyncClient() as client:
        return await worker.puller.pull_due(client)


def test_the_delivery_lease_outlasts_a_token_fetch_and_the_write(database_url: str) -> None:
    settings = fast_settings(database_url, delivery_timeout_seconds=10.0,
                             delivery_lease_seconds=5.0)
    application = create_app(settings)
    try:
        assert DeliveryWorker(application.state.database, settings).lease >= 21.0
    finally:
        application.state.database.dispose()
