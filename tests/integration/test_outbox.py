"""Every committed change leaves exactly one outbox row, written in the same transaction."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.store.tables import outbox_table


def _outbox(app: Any) -> list[tuple[str, str, int, str, str | None]]:
    with app.state.database.engine.connect() as connection:
        rows = connection.execute(select(
            outbox_table.c.type, outbox_table.c.id, outbox_table.c.version_id,
            outbox_table.c.action, outbox_table.c.patient).order_by(outbox_table.c.seq))
        return [tuple(r) for r in rows]


def test_outbox_rows_follow_changes(app: Any, client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": f"Patient/{pid}"}}
    cid = client.post("/fhir/CarePlan", json=plan).json()["id"]
    client.put(f"/fhir/CarePlan/{cid}", json=dict(plan, id=cid, status="completed"))
    client.put(f"/fhir/CarePlan/{cid}", json=dict(plan, id=cid, status="completed"))  # no-op
    client.delete(f"/fhir/CarePlan/{cid}")
    assert _outbox(app) == [
        ("Patient", pid, 1, "create", f"Patient/{pid}"),
        ("CarePlan", cid, 1, "create", f"Patient/{pid}"),
        ("CarePlan", cid, 2, "update", f"Patient/{pid}"),
        ("CarePlan", cid, 3, "delete", f"Patient/{pid}"),
    ]


def test_failed_writes_leave_no_outbox_rows(app: Any, client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:d0000000-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient"},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "bad"},
         "request": {"method": "POST", "url": "Patient"}},
    ]}
    assert client.post("/fhir", json=bundle).status_code == 400
    assert _outbox(app) == []
