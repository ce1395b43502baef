"""GET /patients/{id}/timeline through the HTTP API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.timeline_helpers import PATIENT, put, task, write_story


def _timeline(client: TestClient, **params: str) -> dict:
    response = client.get(f"/patients/{PATIENT}/timeline", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_timeline_tells_the_story_in_order(client: TestClient) -> None:
    write_story(client)
    entries = _timeline(client)["entries"]
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)
    by_kind = {}
    for entry in entries:
        by_kind.setdefault(entry["kind"], []).append(entry)
    admitted, = by_kind["encounter.admitted"]
    transferred, = by_kind["encounter.transferred"]
    discharged, = by_kind["encounter.discharged"]
    assert admitted["summary"] == ("Admitted (inpatient) to Harbor General Hospital, "
                                   "ICU bed 3")
    assert admitted["reference"] == "Encounter/tl-enc/_history/1"
    assert admitted["time"].startswith("2026-11-10T08:00:00")
    assert transferred["summary"] == "Transferred to Ward 4W bed 12 from ICU bed 3"
    assert transferred["reference"] == "Encounter/tl-enc/_history/2"
    assert discharged["summary"] == ("Discharged from Harbor General Hospital (inpatient) "
                                     "to home")
    assert discharged["time"].startswith("2026-11-14T11:00:00")
    assert discharged["reference"] == "Encounter/tl-enc/_history/3"
    order = [e["kind"] for e in entries if e["kind"].startswith("encounter.")]
    assert order == ["encounter.discharged", "encounter.transferred", "encounter.admitted"]


def test_care_plan_versions_carry_a_readable_diff(client: TestClient) -> None:
    write_story(client)
    entries = _timeline(client)["entries"]
    created, = [e for e in entries if e["kind"] == "careplan.created"]
    changed, = [e for e in entries if e["kind"] == "careplan.changed"]
    assert created["summary"] == "Transitional care plan created (active)"
    assert created["details"] == ["Goal: HbA1c below 8%"]
    assert changed["reference"] == "CarePlan/tl-plan/_history/2"
    assert changed["details"] == [
        "Goal added: No readmission in 30 days",
        "Activity added: Follow-up visit within 7 days (due 2026-11-21)",
        "Activity added: Weekly weight check"]
    assert changed["summary"] == "Transitional care plan updated: goal added; 2 activities added"


def test_care_team_joins_and_leaves(client: TestClient) -> None:
    write_story(client)
    entries = _timeline(client)["entries"]
    joins = sorted(e["summary"] for e in entries if e["kind"] == "careteam.joined")
    assert joins == ["Ana Reyes (care manager) joined Thandi's care team",
                     "Sam Lee (primary care physician) joined Thandi's care team"]
    left, = [e for e in entries if e["kind"] == "careteam.left"]
    assert left["summary"] == "Sam Lee (primary care physician) left Thandi's care team"
    assert left["time"].startswith("2026-11-15")
    assert left["reference"] == "CareTeam/tl-team/_history/2"


def test_tasks_created_completed_and_overdue(client: TestClient) -> None:
    write_story(client)
    entries = _timeline(client)["entries"]
    kinds = {(e["kind"], e["summary"]) for e in entries if e["kind"].startswith("task.")}
    assert ("task.completed", "Task completed: Post-discharge call (Ana Reyes)") in kinds
    assert ("task.overdue", "Overdue: Follow-up visit within 7 days (Ana Reyes)") in kinds
    # Past its due date and still open, though nobody flagged it: overdue at the due date.
    past_due, = [e for e in entries if e["kind"] == "task.overdue"
                 and "Medication" in e["summary"]]
    assert past_due["time"].startswith("2026-11-18T23:59:59")
    assert past_due["tone"] == "bad"
    created = [e for e in entries if e["kind"] == "task.created"]
    assert len(created) == 3
    # Completing the overdue task ends its overdue state on the timeline.
    put(client, task("tl-meds", "Medication reconciliation", "completed", "2026-11-18"))
    entries = _timeline(client)["entries"]
    assert not [e for e in entries if e["kind"] == "task.overdue"
                and "Medication" in e["summary"]]
    done, = [e for e in entries if e["kind"] == "task.completed"
             and "Medication" in e["summary"]]
    assert done["reference"] == "Task/tl-meds/_history/2"


def test_pages_with_since_and_a_cursor(client: TestClient) -> None:
    write_story(client)
    everything = _timeline(client, limit="1000")
    assert everything["next"] is None
    first = _timeline(client, limit="4")
    assert first["total"] == everything["total"]
    collected = list(first["entries"])
    next_url = first["next"]
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200
        page = response.json()
        collected += page["entries"]
        next_url = page["next"]
    assert collected == everything["entries"]
    recent = _timeline(client, since="2026-11-14")
    assert recent["entries"]
    assert all(e["time"] >= "2026-11-14" for e in recent["entries"])
    assert recent["total"] < everything["total"]


def test_unknown_patient_and_bad_parameters(client: TestClient) -> None:
    response = client.get("/patients/nobody/timeline")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    write_story(client)
    bad = client.get(f"/patients/{PATIENT}/timeline", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["since"]
    bad = client.get(f"/patients/{PATIENT}/timeline", params={"before": "!!"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["before"]
    bad = client.get(f"/patients/{PATIENT}/timeline", params={"limit": "0"})
    assert bad.status_code == 400


def test_documented_in_openapi(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/patients/{patient_id}/timeline"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"since", "before", "limit"}
    assert "TimelinePage" in document["components"]["schemas"]
