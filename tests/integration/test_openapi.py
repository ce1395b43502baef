"""The OpenAPI document (served at /openapi.json, rendered at /docs) describes every route,
with each path template's parameters declared."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_openapi_declares_every_path_parameter(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert {"/fhir/{resource_type}/{resource_id}", "/fhir/{resource_type}", "/hl7v2",
            "/ingest/careplan", "/sync/deliveries"} <= set(spec["paths"])
    for path, operations in spec["paths"].items():
        wanted = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (method, path, declared)
            assert operation.get("summary"), (method, path)
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
