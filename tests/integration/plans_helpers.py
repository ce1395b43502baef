"""Shared helpers of the plan and roster integration tests: sample documents and posts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).parents[2] / "mappings" / "schemas" / "examples"
PROGRAM = Path(__file__).parents[2] / "examples" / "program"
PLAN_ID = "urn:care-management:acme-cm:plan|CP-1001"
TEAM_ID = "urn:care-management:acme-cm:careteam|CT-1001"


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8")))


def send(client: TestClient, kind: str, document: Any) -> Any:
    return client.post(f"/ingest/{kind}", content=json.dumps(document).encode(),
                       headers={"Content-Type": "application/json"})


def statuses(response: Any) -> dict[str, str]:
    """``Type`` -> set of statuses of that type's resources in an ingest answer."""
    out: dict[str, set[str]] = {}
    for item in response.json()["resources"]:
        out.setdefault(item["reference"].split("/")[0], set()).add(item["status"])
    return {k: ",".join(sorted(v)) for k, v in out.items()}
