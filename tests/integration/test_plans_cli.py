"""``gateway import`` of plans and rosters from JSON, NDJSON and CSV files, read back through
the FHIR API: the example program loads with one command, a second import is all
``unchanged``, and a failed record is reported with its line while the rest are imported."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from tests.integration.hl7v2_helpers import read, search
from tests.integration.plans_helpers import PROGRAM, example


@pytest.fixture
def run(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``gateway import ...`` against the test database; returns the CliRunner result."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()

    def invoke(*args: str, progress: bool = False) -> Any:
        flag = "--progress" if progress else "--no-progress"
        return CliRunner().invoke(cli_app, ["import", flag, *args])

    yield invoke
    get_settings.cache_clear()


def test_example_program_loads_with_one_command(client: TestClient, run: Any) -> None:
    paths = sorted(str(p) for p in PROGRAM.iterdir())
    first = run(*paths)
    assert first.exit_code == 0, first.output
    assert first.output.strip().endswith("10 created, 0 updated, 0 unchanged, 0 failed")
    plans = search(client, "CarePlan", _count="100")
    teams = search(client, "CareTeam", _count="100")
    assert len(plans) == len(teams) == 5
    assert all(p["careTeam"][0]["reference"].startswith("CareTeam/") for p in plans)
    assert len(search(client, "Patient", _count="100")) == 5
    # One care manager and one PCP shared by every team: found by identifier, not copied.
    assert len(search(client, "Practitioner", identifier="http://hl7.org/fhir/sid/us-npi|"
                                                       "1234567893")) == 1
    again = run(*paths, progress=True)
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 10 unchanged, 0 failed" in again.output


def test_a_plan_names_the_patient_its_roster_created(client: TestClient, run: Any) -> None:
    """Rosters first: the roster creates each Patient from identifiers alone; the plan then
    fills in the name and birth date it carries, without a second Patient."""
    result = run(str(PROGRAM / "rosters.csv"), str(PROGRAM / "plans.ndjson"))
    assert result.exit_code == 0, result.output
    patients = search(client, "Patient", _count="100")
    assert len(patients) == 5
    assert all(p.get("name") and p.get("birthDate") for p in patients)


def _roster_rows() -> list[dict[str, str]]:
    with (PROGRAM / "rosters.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_roster_with_one_bad_row(client: TestClient, run: Any, tmp_path: Path) -> None:
    rows = _roster_rows()
    bad_line = next(i for i, r in enumerate(rows) if r["rosterId"] == "CT-1003") + 3
    rows[bad_line - 2]["npi"] = "12345"  # line numbers count the header as line 1
    rows[bad_line - 2]["memberId"] = ""
    path = tmp_path / "rosters.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run(str(path))
    assert result.exit_code == 1
    assert f"{path}:{bad_line}: /members/1/npi" in result.output
    assert "4 created, 0 updated, 0 unchanged, 1 failed" in result.output
    teams = search(client, "CareTeam", _count="100")
    assert sorted(t["identifier"][0]["value"] for t in teams) == [
        "CT-1001", "CT-1002", "CT-1004", "CT-1005"]
    team = next(t for t in teams if t["identifier"][0]["value"] == "CT-1002")
    lead = team["participant"][0]
    assert lead["extension"][0]["valueBoolean"] is True
    assert read(client, lead["onBehalfOf"]["reference"])["name"] == "Acme Care Management"


def test_ndjson_and_json_failures_name_their_records(client: TestClient, run: Any,
                                                    tmp_path: Path) -> None:
    bad = example("careplan")
    bad["planId"] = "CP-BAD"
    bad["riskFactors"][0]["code"] = ""
    lines = [json.dumps(example("careplan")), "{oops", json.dumps(bad), json.dumps({"x": 1})]
    ndjson = tmp_path / "plans.ndjson"
    ndjson.write_text("\n".join(lines) + "\n")
    array = tmp_path / "teams.json"
    array.write_text(json.dumps([example("careteam"), {"rosterId": "CT-9"}]))
    result = run(str(ndjson), str(array))
    assert result.exit_code == 1
    assert f"{ndjson}:2: not JSON" in result.output
    assert f"{ndjson}:3: /riskFactors/0/code" in result.output
    assert f"{ndjson}:4: neither a plan" in result.output
    assert f"{array}:#2: /members: is required" in result.output
    assert "2 created, 0 updated, 0 unchanged, 4 failed" in result.output
    assert [p["identifier"][0]["value"] for p in search(client, "CarePlan")] == ["CP-1001"]


def test_a_plan_failing_between_others_is_kept_with_its_reason(
        app: Any, client: TestClient, run: Any, tmp_path: Path) -> None:
    """Records of a file are committed many to a transaction, each in a savepoint: the
    middle plan cannot be applied (its coordinator matches two Practitioners), so it alone
    is undone, reported with its line and kept with its reason; it is replayed later."""
    from gateway.ingest.inbox import Inbox

    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1999999999"}
    twins = [client.post("/fhir/Practitioner", json={"resourceType": "Practitioner",
                                                      "identifier": [npi]}) for _ in range(2)]
    plans = []
    for number in (1, 2, 3):
        plan = example("careplan")
        plan["planId"] = f"CP-F{number}"
        if number == 2:
            plan["coordinator"] = {"npi": npi["value"]}
        plans.append(json.dumps(plan))
    path = tmp_path / "plans.ndjson"
    path.write_text("\n".join(plans) + "\n")
    result = run(str(path))
    assert result.exit_code == 1
    assert f"{path}:2: More than one Practitioner has the identifier" in result.output
    assert "2 created, 0 updated, 0 unchanged, 1 failed" in result.output
    assert sorted(p["identifier"][0]["value"] for p in search(client, "CarePlan")) == [
        "CP-F1", "CP-F3"]
    assert len(search(client, "Patient")) == 1
    failed = Inbox(app.state.database).list("error")
    assert len(failed) == 1 and "More than one Practitioner" in (failed[0].error or "")
    assert json.loads(failed[0].raw)["planId"] == "CP-F2"
    client.delete(f"/fhir/Practitioner/{twins[1].json()['id']}")
    assert client.post(f"/ingest/messages/{failed[0].id}/$replay").status_code == 201
    assert len(search(client, "CarePlan")) == 3


def test_records_mapped_in_a_worker_process_import_the_same(
        app: Any, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large import maps records in a worker process; the outcome, the failures and
    their lines are those of mapping inline."""
    from gateway.api.ingest_plans import plan_ingest
    from gateway.ingest.planimport import import_files

    class _Request:
        pass

    request = _Request()
    request.app = app  # type: ignore[attr-defined]
    ingest = plan_ingest(request)  # type: ignore[arg-type]
    bad = example("careplan")
    bad["planId"] = "CP-BAD"
    bad["riskFactors"][0]["code"] = ""
    extra = tmp_path / "extra.ndjson"
    extra.write_text(json.dumps(bad) + "\n{oops\n")
    paths = [*sorted(PROGRAM.iterdir()), extra]
    echoed: list[str] = []
    inline: list[bytes] = []
    submit = ingest.submit
    monkeypatch.setattr(ingest, "submit", lambda raw, kind: inline.append(raw) or
                        submit(raw, kind))
    summary = import_files(ingest, paths, progress=False, echo=echoed.append, processes=1)
    # Only the plan that breaks its schema is mapped again here, to build its error.
    assert [json.loads(raw)["planId"] for raw in inline] == ["CP-BAD"]
    assert summary.line() == "10 created, 0 updated, 0 unchanged, 2 failed"
    assert [line.split(": ")[0] for line in echoed] == [f"{extra}:1", f"{extra}:2"]
    assert "/riskFactors/0/code" in echoed[0]
    assert len(search(client, "CarePlan", _count="100")) == 5


def test_records_are_mapped_inline_once_the_worker_process_died(app: Any) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from gateway.api.ingest_plans import plan_ingest
    from gateway.ingest.planimport import _Mapper

    class _Request:
        pass

    request = _Request()
    request.app = app  # type: ignore[attr-defined]

    def died() -> Iterator[Any]:
        raise BrokenProcessPool("gone")
        yield  # pragma: no cover

    with _Mapper(plan_ingest(request), 1) as mapper:  # type: ignore[arg-type]
        results = died()
        assert mapper.next(results) is None and mapper.inline
        assert mapper.next(results) is None
