"""``gateway clients keygen/add/list/disable/token``: register a client from the command
line, get a token over real HTTP with the signed assertion the CLI makes, call the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from tests.conftest import LiveServer


@pytest.fixture
def run(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli_app, ["clients", *args])

    yield invoke
    get_settings.cache_clear()


@pytest.mark.parametrize("rsa", [False, True])
def test_register_get_a_token_and_call_the_api(auth_app: Any, run: Any, tmp_path: Path,
                                               rsa: bool) -> None:
    private, public = tmp_path / "key.json", tmp_path / "jwks.json"
    made = run("keygen", str(private), str(public), *(["--rsa"] if rsa else []))
    assert made.exit_code == 0, made.output
    added = run("add", "care-app", "--jwks", str(public), "--scopes",
                "system/Patient.rs system/CarePlan.cruds", "--organization", "org-a")
    assert added.exit_code == 0, added.output
    listed = run("list")
    assert "care-app\tactive\torg-a\tsystem/Patient.rs system/CarePlan.cruds" in listed.output
    with LiveServer(auth_app) as server:
        url = f"http://127.0.0.1:{server.port}/auth/token"
        got = run("token", "care-app", "--key", str(private), "--scope",
                  "system/Patient.rs", "--url", url)
        assert got.exit_code == 0, got.output
        token = got.output.strip()
        answer = httpx.get(f"{server.base}/Patient", headers={
            "Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.json()["type"] == "searchset"
        assert run("disable", "care-app").exit_code == 0
        refused = run("token", "care-app", "--key", str(private), "--scope",
                      "system/Patient.rs", "--url", url)
        assert refused.exit_code == 1
        assert "invalid_client" in refused.output
    assert "care-app\tdisabled" in run("list").output


def test_an_organization_reference_is_stored_as_its_id(run: Any, tmp_path: Path) -> None:
    private, public = tmp_path / "key.json", tmp_path / "jwks.json"
    assert run("keygen", str(private), str(public)).exit_code == 0
    added = run("add", "ref-app", "--jwks", str(public), "--scopes", "system/Patient.rs",
                "--organization", "Organization/org-a")
    assert added.exit_code == 0, added.output
    assert "ref-app\tactive\torg-a\t" in run("list").output


def test_bad_registrations_are_refused(run: Any, tmp_path: Path) -> None:
    public = tmp_path / "jwks.json"
    public.write_text('{"keys": []}')
    assert run("add", "x", "--scopes", "system/Patient.rs").exit_code == 2
    assert run("add", "x", "--jwks", str(public), "--scopes", "patient/*.rs").exit_code == 2
    assert run("disable", "nobody").exit_code == 1
