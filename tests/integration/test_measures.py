"""GET /measures on a fixture of known encounters, written through the FHIR API, whose
figures are worked out by hand below (period 2026-01..2026-06, panel Organization/north).

Patient a (team member: the organization)
  a1 IMP 01-10..01-15   a2 IMP 01-27..02-02 (readmission, day 12 after a1)
  a3 AMB 01-20 (day 5 after a1)   a4 AMB 02-22 (day 20 after a2)   a5 EMER 03-03
Patient b (team member on behalf of the organization)
  b1 IMP 01-28..01-31T22:00-05:00 (local date Jan 31, UTC Feb 1: January)
  b2 IMP 03-03..03-10 (day 31 after b1: not a readmission)
  b3 AMB 01-31 (discharge day: not a follow-up)   b4 AMB planned 03-12 (not finished)
  b5 EMER 02-28T23:30-05:00 (February)   b6 EMER cancelled 03-01
Patient c (the organization manages the team)
  c1 IMP 05-25..06-30   c2 IMP elective 07-05..07-07 (planned: not a readmission)
  c3 IMP in progress from 07-20 (day 20: readmission)   c4 AMB 07-06 (day 6: follow-up)
Patient d (team member: the organization)
  d1 IMP 04-01..04-03, died: excluded from readmission and follow-up
Patient x (another organization's team): x1 IMP 02-01..02-05, x2 EMER 02-10

ED visits: b5 (Feb), a5 (Mar) = 2. Admissions by start: Jan a1 a2 b1, Mar b2, Apr d1,
May c1 = 6. Index stays discharged in the period: a1 b1 (Jan), a2 (Feb), b2 (Mar), c1 (Jun);
d1 excluded. Readmitted: a1 (a2, 12 days), c1 (c3, 20 days) = 2/5. Follow-up within 7 days:
a1 (a3, 5), c1 (c4, 6) = 2/5; within 30 days: also a2 (a4, 20) = 3/5.
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from tests.integration.measures_support import (
    care_team,
    encounter,
    member,
    organization,
    patient,
    practitioner,
    put,
)

PERIOD = "2026-01..2026-06"
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]


@pytest.fixture
def fixture(client: TestClient) -> TestClient:
    north, south = organization(client, "north"), organization(client, "south")
    for pid in "abcdx":
        patient(client, pid)
    doctor = practitioner(client, "dr-b")
    care_team(client, "team-a", "a", [member(north)])
    care_team(client, "team-b", "b", [member(doctor, on_behalf_of=north)])
    care_team(client, "team-c", "c", [member(practitioner(client, "dr-c"))],
              managingOrganization=[{"reference": north}])
    care_team(client, "team-d", "d", [member(north)])
    care_team(client, "team-x", "x", [member(south)])
    for body in [
        encounter("a1", "a", "IMP", "2026-01-10T08:00:00Z", "2026-01-15T10:00:00Z"),
        encounter("a2", "a", "IMP", "2026-01-27T09:00:00Z", "2026-02-02T12:00:00Z"),
        encounter("a3", "a", "AMB", "2026-01-20T14:00:00Z", "2026-01-20T14:30:00Z"),
        encounter("a4", "a", "AMB", "2026-02-22", "2026-02-22"),
        encounter("a5", "a", "EMER", "2026-03-03T02:00:00Z", "2026-03-03T06:00:00Z"),
        encounter("b1", "b", "IMP", "2026-01-28T10:00:00-05:00", "2026-01-31T22:00:00-05:00"),
        encounter("b2", "b", "IMP", "2026-03-03", "2026-03-10"),
        encounter("b3", "b", "AMB", "2026-01-31", "2026-01-31"),
        encounter("b4", "b", "AMB", "2026-03-12", status="planned"),
        encounter("b5", "b", "EMER", "2026-02-28T23:30:00-05:00", "2026-03-01T03:00:00-05:00"),
        encounter("b6", "b", "EMER", "2026-03-01", status="cancelled"),
        encounter("c1", "c", "IMP", "2026-05-25", "2026-06-30"),
        encounter("c2", "c", "IMP", "2026-07-05", "2026-07-07", elective=True),
        encounter("c3", "c", "IMP", "2026-07-20", status="in-progress"),
        encounter("c4", "c", "AMB", "2026-07-06", "2026-07-06"),
        encounter("d1", "d", "IMP", "2026-04-01", "2026-04-03", died=True),
        encounter("x1", "x", "IMP", "2026-02-01", "2026-02-05"),
        encounter("x2", "x", "EMER", "2026-02-10", "2026-02-10"),
    ]:
        put(client, body)
    return client


def _get(client: TestClient, **params: str) -> dict:
    response = client.get("/measures", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _by_month(figure: dict, key: str) -> list:
    return [figure["by_month"][m][key] for m in MONTHS]


def test_organization_panel_counts_and_rates(fixture: TestClient) -> None:
    report = _get(fixture, period=PERIOD, organization="Organization/north")
    assert report["months"] == MONTHS
    assert report["panel"] == {"kind": "organization", "reference": "Organization/north"}
    assert [p["patient"] for p in report["patients"]] == [
        "Patient/a", "Patient/b", "Patient/c", "Patient/d"]
    m = report["measures"]

    assert m["ed_visits"]["total"] == {"count": 2, "encounters": ["Encounter/a5",
                                                                  "Encounter/b5"]}
    assert _by_month(m["ed_visits"], "count") == [0, 1, 1, 0, 0, 0]
    assert _by_month(m["ed_visits"], "encounters")[1] == ["Encounter/b5"]

    assert m["inpatient_admissions"]["total"]["count"] == 6
    assert _by_month(m["inpatient_admissions"], "count") == [3, 0, 1, 1, 1, 0]
    assert sorted(m["inpatient_admissions"]["by_month"]["2026-01"]["encounters"]) == [
        "Encounter/a1", "Encounter/a2", "Encounter/b1"]

    readmission = m["readmission_30d"]["total"]
    assert (readmission["numerator"], readmission["denominator"], readmission["rate"]) == \
        (2, 5, 0.4)
    assert sorted(readmission["denominator_encounters"]) == [
        "Encounter/a1", "Encounter/a2", "Encounter/b1", "Encounter/b2", "Encounter/c1"]
    assert sorted(readmission["numerator_encounters"], key=lambda e: e["encounter"]) == [
        {"encounter": "Encounter/a1", "readmission": "Encounter/a2", "days": 12},
        {"encounter": "Encounter/c1", "readmission": "Encounter/c3", "days": 20}]
    assert readmission["excluded"] == [{"encounter": "Encounter/d1", "reason": "died"}]
    assert _by_month(m["readmission_30d"], "numerator") == [1, 0, 0, 0, 0, 1]
    assert _by_month(m["readmission_30d"], "denominator") == [2, 1, 1, 0, 0, 1]
    assert _by_month(m["readmission_30d"], "rate") == [0.5, 0.0, 0.0, None, None, 1.0]

    seven, thirty = m["follow_up_7d"]["total"], m["follow_up_30d"]["total"]
    assert (seven["numerator"], seven["denominator"], seven["rate"]) == (2, 5, 0.4)
    assert (thirty["numerator"], thirty["denominator"], thirty["rate"]) == (3, 5, 0.6)
    assert sorted(seven["numerator_encounters"], key=lambda e: e["encounter"]) == [
        {"encounter": "Encounter/a1", "visit": "Encounter/a3", "days": 5},
        {"encounter": "Encounter/c1", "visit": "Encounter/c4", "days": 6}]
    assert sorted(thirty["numerator_encounters"], key=lambda e: e["encounter"]) == [
        {"encounter": "Encounter/a1", "visit": "Encounter/a3", "days": 5},
        {"encounter": "Encounter/a2", "visit": "Encounter/a4", "days": 20},
        {"encounter": "Encounter/c1", "visit": "Encounter/c4", "days": 6}]
    assert _by_month(m["follow_up_30d"], "numerator") == [1, 1, 0, 0, 0, 1]

    # No care-team member has an Endpoint: no discharge can be traced to a PCP notification.
    pcp = m["pcp_notification_hours"]["total"]
    assert (pcp["denominator"], pcp["median_hours"]) == (0, None)
    assert sorted(e["encounter"].split("/")[1] for e in pcp["excluded"]) == [
        "a1", "a2", "a5", "b1", "b2", "b5", "c1", "d1"]
    assert {"encounter": "Encounter/b5", "reason": "no PCP endpoint"} in pcp["excluded"]


def test_each_patient_has_its_own_figures(fixture: TestClient) -> None:
    report = _get(fixture, period=PERIOD, organization="north")
    rows = {p["patient"]: p["measures"] for p in report["patients"]}
    assert [p["name"] for p in report["patients"]] == ["a", "b", "c", "d"]
    assert rows["Patient/b"]["ed_visits"]["total"]["count"] == 1
    assert rows["Patient/b"]["readmission_30d"]["total"]["numerator"] == 0
    assert rows["Patient/b"]["readmission_30d"]["total"]["denominator"] == 2
    assert rows["Patient/a"]["follow_up_7d"]["total"]["rate"] == 0.5
    assert rows["Patient/d"]["inpatient_admissions"]["by_month"]["2026-04"]["count"] == 1


def test_panels_of_one_patient_of_a_practitioner_and_of_everyone(fixture: TestClient) -> None:
    outsider = _get(fixture, period="2026-02", patient="Patient/x")
    assert outsider["months"] == ["2026-02"]
    assert outsider["measures"]["ed_visits"]["total"]["encounters"] == ["Encounter/x2"]
    assert outsider["measures"]["readmission_30d"]["total"]["denominator_encounters"] == [
        "Encounter/x1"]
    coordinator = _get(fixture, period=PERIOD, practitioner="Practitioner/dr-b")
    assert [p["patient"] for p in coordinator["patients"]] == ["Patient/b"]
    everyone = _get(fixture, period=PERIOD)
    assert everyone["patient_count"] == 5
    assert everyone["measures"]["ed_visits"]["total"]["count"] == 3


def test_csv_lists_every_figure(fixture: TestClient) -> None:
    response = fixture.get("/measures.csv",
                           params={"period": PERIOD, "organization": "Organization/north"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["scope", "measure", "month", "numerator", "denominator", "value"]
    assert ["panel", "readmission_30d", "total", "2", "5", "0.4"] in rows
    assert ["panel", "ed_visits", "2026-02", "1", "", "1"] in rows
    assert ["Patient/a", "follow_up_30d", "total", "2", "2", "1.0"] in rows
    same = fixture.get("/measures", params={"period": PERIOD, "organization": "north",
                                            "format": "csv"})
    assert same.text == response.text


@pytest.mark.parametrize(("params", "parameter"), [
    ({"period": "2026-13"}, "period"),
    ({"period": "2026-06..2026-01"}, "period"),
    ({"period": "2020-01..2026-01"}, "period"),
    ({"period": "March"}, "period"),
    ({"organization": "Patient/a"}, "organization"),
    ({"organization": "north", "practitioner": "dr-b"}, "practitioner"),
    ({"format": "xml"}, "format"),
])
def test_bad_parameters_get_an_operation_outcome_naming_them(
        client: TestClient, params: dict[str, str], parameter: str) -> None:
    response = client.get("/measures", params=params)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [parameter]


def test_unknown_patient_is_not_found(client: TestClient) -> None:
    response = client.get("/measures", params={"patient": "Patient/nobody"})
    assert response.status_code == 404
    assert response.json()["issue"][0]["expression"] == ["patient"]


def test_page_shows_the_panel_and_its_patients(fixture: TestClient) -> None:
    response = fixture.get("/measures/view",
                           params={"period": PERIOD, "organization": "Organization/north"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>Measures" in page
    assert "2/5 (40%)" in page          # readmission rate and 7-day follow-up
    assert "3/5 (60%)" in page          # 30-day follow-up
    assert "Patient/d" in page and "Patient/x" not in page
    bad = fixture.get("/measures/view", params={"period": "2026-1"})
    assert bad.status_code == 400
    assert "is not YYYY-MM" in bad.text


def test_measures_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/measures", "/measures.csv", "/measures/view"} <= set(paths)
    names = {p["name"] for p in paths["/measures"]["get"]["parameters"]}
    assert {"period", "organization", "practitioner", "patient", "format"} <= names
