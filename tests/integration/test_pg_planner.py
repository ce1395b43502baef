"""PostgreSQL sessions the gateway opens plan for cached data (store/reader.py,
``PG_SESSION_OPTIONS``): with the default random_page_cost, a patient's CarePlan search
scanned the whole resource table once its statistics were gathered."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gateway.store import query
from gateway.store.db import Database
from gateway.store.query import execute
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL planner settings")


def test_every_connection_has_the_planner_setting_and_keeps_the_urls_options(
        database_url: str) -> None:
    separator = "&" if "?" in database_url else "?"
    database = Database(f"{database_url}{separator}options=-c%20work_mem%3D7MB")
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("SHOW random_page_cost")).scalar() == "1.1"
            assert connection.execute(text("SHOW work_mem")).scalar() == "7MB"
        cursor = database.reader._connection().cursor()
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone() == ("1.1",)
    finally:
        database.dispose()


def test_a_patients_careplans_are_found_through_the_reference_index(
        client: TestClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    patients = [client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
                for _ in range(100)]
    for batch in range(6):
        entries = [{"request": {"method": "POST", "url": "CarePlan"},
                    "resource": {"resourceType": "CarePlan", "status": "active",
                                 "intent": "plan",
                                 "subject": {"reference": f"Patient/{patients[n % 100]}"}}}
                   for n in range(batch * 500, batch * 500 + 500)]
        assert client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": entries}).status_code == 200
    database: Database = app.state.database  # type: ignore[attr-defined]
    with database.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
    searches: list[tuple[str, list[Any]]] = []

    def spy(conn: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        searches.append((sql, params))
        return execute(conn, sql, params)

    monkeypatch.setattr(query, "execute", spy)
    found = client.get(f"/fhir/CarePlan?patient=Patient/{patients[3]}").json()
    assert found["total"] == 30
    sql, params = next((s, p) for s, p in searches if "idx_reference" in s)
    with database.engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.execute("EXPLAIN " + sql.replace("?", "%s"), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on resource " not in plan, plan
