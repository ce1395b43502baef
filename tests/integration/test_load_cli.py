"""``gateway load`` writes through the same checks as the API: a Subscription the gateway
cannot honour is refused before anything is written, alone or inside a Bundle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from tests.integration.sync_support import subscription


@pytest.fixture
def load(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """``gateway load FILE`` of one JSON document against the test database."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()

    def invoke(document: dict[str, Any]) -> Any:
        path = tmp_path / "load.json"
        path.write_text(json.dumps(document))
        return CliRunner().invoke(cli_app, ["load", str(path)])

    yield invoke
    get_settings.cache_clear()


def _count(client: TestClient, resource_type: str) -> int:
    return int(client.get(f"/fhir/{resource_type}", params={"_summary": "count"})
               .json()["total"])


def test_a_subscription_it_cannot_honour_is_refused(client: TestClient, load: Any) -> None:
    result = load(subscription("http://127.0.0.1:9/hook", "Encounter?bogus=1"))
    assert result.exit_code == 1
    assert "failed" in result.output and "bogus" in result.output
    assert _count(client, "Subscription") == 0


def test_a_bundle_with_a_bad_subscription_writes_nothing(client: TestClient,
                                                         load: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"family": "Kept"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": subscription("http://127.0.0.1:9/hook", "Encounter?bogus=1"),
         "request": {"method": "POST", "url": "Subscription"}}]}
    result = load(bundle)
    assert result.exit_code == 1
    assert "Bundle.entry[1].resource" in result.output
    assert _count(client, "Patient") == 0
    assert _count(client, "Subscription") == 0


def test_a_good_subscription_loads(client: TestClient, load: Any) -> None:
    result = load(subscription("http://127.0.0.1:9/hook", "Encounter?class=IMP"))
    assert result.exit_code == 0, result.output
    assert _count(client, "Subscription") == 1
