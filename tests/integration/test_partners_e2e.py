"""Partner FHIR servers end to end: two gateway instances on 127.0.0.1, A pushing its
CarePlans into B and pulling B's changes back, without loops; a conflicting edit on B is
detected and reported, never overwritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import get_settings
from tests.conftest import LiveServer
from tests.integration.sync_support import WorkerThread, new_patient, wait_for

PLAN = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
        "title": "Diabetes programme"}


def _versions(client: Any, path: str) -> int:
    return int(client.get(f"{path}/_history").json()["total"])


def _partner_deliveries(api: TestClient) -> list[dict[str, Any]]:
    return [d for d in api.get("/sync/deliveries", params={"_count": 1000}).json()
            if d["subscription"] == "Partner/b"]


@pytest.fixture
def remote(partner_gateway: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=partner_gateway.base) as client:
        yield client


def test_push_and_pull_round_trip_without_loops_and_conflicts_are_reported(
        sync_app: Any, api: TestClient, partner_gateway: LiveServer, remote: httpx.Client,
        monkeypatch: Any) -> None:
    added = api.post("/sync/partners", json={"name": "b", "base_url": partner_gateway.base,
                                             "direction": "both", "types": ["CarePlan"]})
    assert added.status_code == 201, added.text
    patient = new_patient(api)
    plan = dict(PLAN, subject={"reference": f"Patient/{patient}"})
    settings = sync_app.state.settings.model_copy(update={"partner_pull_seconds": 3600})
    with WorkerThread(sync_app.state.database, settings):
        local = api.post("/fhir/CarePlan", json=plan).json()
        path = f"/fhir/CarePlan/{local['id']}"
        pushed = wait_for(lambda: remote.get("/CarePlan").json().get("entry"), what="push")
        copy_path = f"/CarePlan/{pushed[0]['resource']['id']}"

        # Pulled back unchanged: nothing is written on either side.
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 0}
        assert (_versions(api, path), _versions(remote, copy_path)) == (1, 1)

        # A change made on B comes back to A, with its source, and is not echoed to B.
        changed = dict(remote.get(copy_path).json(), title="Diabetes, insulin started")
        assert remote.put(copy_path, json=changed).status_code == 200
        assert api.post("/sync/partners/b/$pull").json() == {"CarePlan": 1}
        pulled = api.get(path).json()
        assert pulled["title"] == "Diabetes, insulin started"
        assert pulled["subject"] == {"reference": f"Patient/{patient}"}
        assert pulled["meta"]["source"] == f"{partner_gateway.base}{copy_path}"
        assert "identifier" not in pulled  # the gateway's own identifier stays on B
        marker = api.post("/fhir/CarePlan", json=dict(plan, title="marker")).json()
        wait_for(lambda: len(remote.get("/CarePlan").json()["entry"]) == 2,
                 what="a later change pushed, so the pulled one was routed before it")
        assert (_versions(api, path), _versions(remote, copy_path)) == (2, 2)
        assert len(_partner_deliveries(api)) == 2  # the create and the marker, no echo

        # A local edit that keeps the partner as meta.source is a local edit: pushed.
        kept_source = dict(pulled, status="on-hold")
        assert api.put(path, json=kept_source).json()["meta"]["versionId"] == "3"
        wait_for(lambda: remote.get(copy_path).json()["status"] == "on-hold",
                 what="the local edit pushed")
        # B moves on again; A's next edit must not overwrite it.
        newer = dict(remote.get(copy_path).json(), title="Edited at the partner")
        assert remote.put(copy_path, json=newer).status_code == 200
        edited = {k: v for k, v in pulled.items() if k != "meta"}
        assert api.put(path, json=dict(edited, title="Edited here")).status_code == 200
        conflicts = wait_for(lambda: api.get("/sync/conflicts").json(), what="a conflict")
    assert remote.get(copy_path).json()["title"] == "Edited at the partner"
    assert _versions(remote, copy_path) == 4
    assert len(conflicts) == 1
    conflict = conflicts[0]
    assert conflict["destination_name"] == "Partner/b"
    assert conflict["focus"] == f"CarePlan/{local['id']}/_history/4"
    assert (conflict["http_status"], conflict["expected_version"]) == (412, "3")
    assert conflict["remote_id"] == copy_path.split("/")[-1]
    failed = [d for d in _partner_deliveries(api) if d["status"] == "failed"]
    assert [d["focus"] for d in failed] == [conflict["focus"]]
    assert failed[0]["attempts"] == 1 and failed[0]["last_error"].startswith("conflict")
    assert marker["id"] != local["id"]

    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        shown = runner.invoke(cli, ["partners", "conflicts", "--partner", "b"])
        assert shown.exit_code == 0, shown.output
        assert f"Partner/b  CarePlan/{local['id']}/_history/4  HTTP 412" in shown.output
        listed = runner.invoke(cli, ["partners", "list"])
        assert "both" in listed.output and partner_gateway.base in listed.output
    finally:
        get_settings.cache_clear()


def test_partner_registry_api_and_cli(api: TestClient, monkeypatch: Any,
                                      settings: Any) -> None:
    bad = api.post("/sync/partners", json={"name": "x", "base_url": "ftp://x",
                                           "types": ["CarePlan"]})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["base_url"]
    no_secret = api.post("/sync/partners", json={
        "name": "x", "base_url": "https://x.org/fhir", "auth": "oauth2",
        "token_url": "https://x.org/token", "client_id": "gw"})
    assert no_secret.json()["issue"][0]["expression"] == ["client_secret"]
    added = api.post("/sync/partners", json={
        "name": "ehr", "base_url": "https://ehr.example.org/fhir/", "auth": "bearer",
        "token": "s3cret", "types": ["Encounter", "CarePlan"]})
    assert added.status_code == 201, added.text
    assert added.json()["token"] == "***" and added.json()["base_url"].endswith("/fhir")
    assert api.post("/sync/partners", json={"name": "ehr", "base_url": "https://y.org"}
                    ).status_code == 409
    assert [p["name"] for p in api.get("/sync/partners").json()] == ["ehr"]
    assert api.post("/sync/partners/ehr/$pull").status_code == 400  # push only

    monkeypatch.setenv("GATEWAY_DATABASE_URL", api.app.state.settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["partners", "add", "snf", "https://snf.example.org/fhir",
                                     "--direction", "pull", "--types", "CarePlan"])
        assert result.exit_code == 0, result.output
        assert runner.invoke(cli, ["partners", "add", "snf", "https://z.org"]).exit_code == 2
        assert runner.invoke(cli, ["partners", "remove", "ehr"]).exit_code == 0
        assert "snf" in runner.invoke(cli, ["partners", "list"]).output
    finally:
        get_settings.cache_clear()
    assert [p["name"] for p in api.get("/sync/partners").json()] == ["snf"]
    assert api.delete("/sync/partners/ehr").status_code == 404
