"""Registering partners: what the database could not hold, a name taken (now or before) and a
name reused after removal answer clear errors -- an OperationOutcome over HTTP, one line and
exit 2 on the command line -- never an internal error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import get_settings

LONG_URL = "https://ehr.example.org/" + "x" * 1100
OAUTH = {"auth": "oauth2", "token_url": "https://auth.example.org/token",
         "client_id": "gw", "client_secret": "s3cret"}


@pytest.fixture
def http(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver",
                    raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def runner(http: TestClient, settings: Any,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The command line on the migrated database of ``http``'s app."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.mark.parametrize(("fields", "element"), [
    ({"base_url": LONG_URL}, "base_url"),
    ({**OAUTH, "token_url": LONG_URL}, "token_url"),
    ({**OAUTH, "client_id": "c" * 300}, "client_id"),
    ({**OAUTH, "scope": "system/*.read " * 50}, "scope"),
    ({"name": "n" * 65}, "name"),
])
def test_overlong_fields_are_refused_by_name(http: TestClient, fields: dict[str, Any],
                                             element: str) -> None:
    body = {"name": "ehr", "base_url": "https://ehr.example.org/fhir", **fields}
    answer = http.post("/sync/partners", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["expression"] == [element]
    assert http.get("/sync/partners").json() == []


def test_types_given_twice_are_kept_once(http: TestClient) -> None:
    added = http.post("/sync/partners", json={"name": "ehr", "base_url": "https://e.org",
                                              "types": ["CarePlan", "Encounter"] * 40})
    assert added.status_code == 201, added.text
    assert added.json()["types"] == ["CarePlan", "Encounter"]


def test_a_removed_name_can_be_registered_again(http: TestClient) -> None:
    for _ in range(3):
        added = http.post("/sync/partners", json={"name": "ehr",
                                                  "base_url": "https://ehr.example.org"})
        assert added.status_code == 201, added.text
        assert http.post("/sync/partners", json={"name": "ehr",
                                                 "base_url": "https://other.example.org"}
                         ).status_code == 409
        assert http.delete("/sync/partners/ehr").status_code == 204
    assert http.get("/sync/partners").json() == []


def test_cli_answers_one_line_and_exit_2(runner: CliRunner) -> None:
    long = runner.invoke(cli, ["partners", "add", "ehr", LONG_URL])
    assert long.exit_code == 2, long.output
    assert "base_url is longer" in long.output and "Traceback" not in long.output
    assert runner.invoke(cli, ["partners", "add", "ehr", "https://ehr.example.org"]
                         ).exit_code == 0
    taken = runner.invoke(cli, ["partners", "add", "ehr", "https://ehr.example.org"])
    assert taken.exit_code == 2 and "exists already" in taken.output
    assert runner.invoke(cli, ["partners", "remove", "ehr"]).exit_code == 0
    again = runner.invoke(cli, ["partners", "add", "ehr", "https://ehr.example.org"])
    assert again.exit_code == 0, again.output
    assert len(again.output.strip().splitlines()) == 1


def test_cli_takes_partner_credentials_from_the_environment(runner: CliRunner,
                                                           http: TestClient) -> None:
    """Credentials given in the environment stay out of shell history and `ps`; they are
    stored and never echoed."""
    added = runner.invoke(cli, ["partners", "add", "snf", "https://snf.example.org",
                                "--auth", "bearer"], env={"GATEWAY_PARTNER_TOKEN": "s3cret"})
    assert added.exit_code == 0, added.output
    assert "s3cret" not in added.output
    listed = http.get("/sync/partners").json()
    snf = next(p for p in (listed if isinstance(listed, list) else listed["partners"])
               if p["name"] == "snf")
    assert snf["auth"] == "bearer" and snf["token"] == "***"
    refused = runner.invoke(cli, ["partners", "add", "snf2", "https://snf.example.org",
                                  "--auth", "bearer"], env={"GATEWAY_PARTNER_TOKEN": ""})
    assert refused.exit_code == 2 and "needs a token" in refused.output
