"""Transition workflows end to end: an enrolled patient (plan + roster through /ingest), an
ADT discharge through /hl7v2 (or an Encounter through the FHIR API), and the follow-up Tasks
and CarePlan activities the workflow runner -- the one the delivery workers run -- makes of
them, closes and flags.

The sample ADT messages happened in March 2024, so these tests lift the rules'
``max_age_days`` (as a deployment backfilling history on purpose would): otherwise a
transition recorded years after it happened raises nothing (tests/unit/test_transitions.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from gateway.coordination.runner import WorkflowRunner, workflow_runner
from gateway.store.tables import sync_cursor_table
from gateway.sync.careteam import FORMAT_SYSTEM
from tests.integration.hl7v2_helpers import post, read, sample, search
from tests.integration.plans_helpers import example, send
from tests.integration.sync_support import ReceiverServer, WorkerThread, wait_for

TASKS = "http://fhir-care-gateway.org/NamingSystem/transition-task"
ACTIVITY = "http://fhir-care-gateway.org/CodeSystem/transition-activity"
MRN = {"N100234": "MRN1001"}  # the sample ADT patient is the example plan's patient
LEAD = "urn:care-management:acme-cm:practitioner|cm-17"


@pytest.fixture(autouse=True)
def history_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mappings without the age limit, for every component built in the test."""
    mappings = tmp_path / "mappings"
    shutil.copytree(Path(__file__).parents[2] / "mappings", mappings)
    rules = mappings / "workflows" / "transitions.yaml"
    text = rules.read_text()
    assert "max_age_days: 30\n" in text
    rules.write_text(text.replace("max_age_days: 30\n", ""))
    monkeypatch.setenv("GATEWAY_MAPPINGS_DIR", str(mappings))


@pytest.fixture
def runner(sync_app: Any) -> WorkflowRunner:
    return workflow_runner(sync_app.state.database, sync_app.state.settings)


def enrol(api: TestClient, program: str | None = None) -> str:
    """Roster, then plan (the example program's patient); the Patient's reference."""
    assert send(api, "careteam", example("careteam")).status_code == 201
    plan = example("careplan")
    if program:
        plan["program"] = {"code": program}
    assert send(api, "careplan", plan).status_code == 201
    found = search(api, "Patient", identifier="urn:hl7v2:authority:NORTH|MRN1001")
    return f"Patient/{found[0]['id']}"


def discharge(api: TestClient, control: str = "N-0003") -> None:
    reply = post(api, sample("north_a03_v25", {**MRN, "N-0003": control}))
    assert "MSA|AA" in reply.text, reply.text


def tasks(api: TestClient, **params: str) -> dict[str, dict[str, Any]]:
    """Our Tasks by activity name (the one of the gateway's code)."""
    found = search(api, "Task", identifier=f"{TASKS}|", **params)
    return {next(c["code"] for c in t["code"]["coding"] if c["system"] == ACTIVITY): t
            for t in found}


def plan_activities(api: TestClient) -> dict[str, dict[str, Any]]:
    plan = search(api, "CarePlan", status="active")[0]
    return {a["id"]: a for a in plan["activity"] if "detail" in a}


def amb_visit(patient: str, start: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": {"reference": patient}, "period": {"start": start, "end": start}}


def test_discharge_raises_followups_and_the_care_team_hears_of_them(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    patient = enrol(api)
    lead = search(api, "Practitioner", identifier=LEAD)[0]["id"]
    endpoint = api.post("/fhir/Endpoint", json={
        "resourceType": "Endpoint", "status": "active", "address": receiver.url,
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                                     "endpoint-connection-type", "code": "hl7-fhir-rest"},
        "payloadType": [{"coding": [{"system": FORMAT_SYSTEM,
                                     "code": "backport-notification"}]}]}).json()["id"]
    api.post("/fhir/PractitionerRole", json={
        "resourceType": "PractitionerRole", "practitioner": {"reference": f"Practitioner/{lead}"},
        "endpoint": [{"reference": f"Endpoint/{endpoint}"}]})
    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        discharge(api)
        found = wait_for(lambda: len(tasks(api)) == 3 and tasks(api), what="three Tasks")
        wait_for(lambda: any(b"transition-activity" in r.body
                             for r in receiver.receiver.accepted()),
                 what="the care team notified of the new plan activities")
    encounter = search(api, "Encounter", identifier="urn:hl7v2:authority:NORTH|V20240001")[0]
    plan = search(api, "CarePlan", status="active")[0]
    # Discharged Saturday 9 March 2024: 7 calendar days, 2 business days (Mon, Tue).
    assert {name: t["restriction"]["period"]["end"] for name, t in found.items()} == {
        "followup-visit": "2024-03-16", "medication-reconciliation": "2024-03-16",
        "post-discharge-call": "2024-03-12"}
    for task in found.values():
        assert task["status"] == "requested" and task["intent"] == "order"
        assert task["owner"] == {"reference": f"Practitioner/{lead}"}
        assert task["basedOn"] == [{"reference": f"CarePlan/{plan['id']}"}]
        assert task["for"] == task["focus"] == {"reference": patient}
        assert task["reasonReference"] == {"reference": f"Encounter/{encounter['id']}"}
        assert task["identifier"][0]["value"].startswith(f"{encounter['id']}|discharge/")
        assert task["meta"]["versionId"] and task["meta"]["lastUpdated"]
    activities = plan_activities(api)
    assert set(activities) == {t["id"] for t in found.values()}
    call = activities[found["post-discharge-call"]["id"]]["detail"]
    assert call["status"] == "not-started" and call["kind"] == "Task"
    assert call["scheduledPeriod"]["end"] == "2024-03-12"
    assert call["performer"] == [{"reference": f"Practitioner/{lead}"}]
    assert {c["code"] for c in call["code"]["coding"]} == {"post-discharge-call", "185317003"}
    # The plan's own interventions are still there, and the CarePlan validates.
    assert len(plan["activity"]) == 6
    assert api.put(f"/fhir/CarePlan/{plan['id']}", json=plan).status_code == 200


def test_a_replayed_or_repeated_discharge_makes_no_second_task(
        sync_app: Any, api: TestClient, runner: WorkflowRunner) -> None:
    enrol(api)
    discharge(api)
    runner.run_until_idle()
    discharge(api)                    # the same message again (a resend)
    discharge(api, control="N-0099")  # the same discharge under another control id
    runner.run_until_idle()
    assert len(tasks(api)) == 3
    assert len(plan_activities(api)) == 3
    # The whole outbox read again (as after a lost commit): still the same three.
    with sync_app.state.database.engine.begin() as conn:
        conn.execute(update(sync_cursor_table).where(sync_cursor_table.c.name == "workflows")
                     .values(position=0))
    assert runner.run_until_idle() > 0
    assert len(search(api, "Task", identifier=f"{TASKS}|")) == 3
    assert len(plan_activities(api)) == 3


def test_an_ambulatory_visit_in_the_window_closes_the_followup_visit(
        api: TestClient, runner: WorkflowRunner) -> None:
    patient = enrol(api)
    discharge(api)
    runner.run_until_idle()
    late = api.post("/fhir/Encounter", json=amb_visit(patient, "2024-03-20T10:00:00-04:00"))
    assert late.status_code == 201
    runner.run_until_idle()
    assert tasks(api)["followup-visit"]["status"] == "requested"  # outside the window
    visit = api.post("/fhir/Encounter", json=amb_visit(patient, "2024-03-13T10:00:00-04:00"))
    runner.run_until_idle()
    found = tasks(api)
    assert found["followup-visit"]["status"] == "completed"
    assert found["followup-visit"]["output"][0]["valueReference"] == {
        "reference": f"Encounter/{visit.json()['id']}"}
    assert found["post-discharge-call"]["status"] == "requested"  # a visit is not a call
    activity = plan_activities(api)[found["followup-visit"]["id"]]
    assert activity["detail"]["status"] == "completed"
    assert activity["outcomeReference"] == [{"reference": f"Encounter/{visit.json()['id']}"}]


def test_put_of_a_completed_task_closes_its_activity(api: TestClient,
                                                     runner: WorkflowRunner) -> None:
    enrol(api)
    discharge(api)
    runner.run_until_idle()
    task = tasks(api)["medication-reconciliation"]
    task["status"] = "completed"
    assert api.put(f"/fhir/Task/{task['id']}", json=task).status_code == 200
    runner.run_until_idle()
    statuses = {a["detail"]["code"]["coding"][0]["code"]: a["detail"]["status"]
                for a in plan_activities(api).values()}
    assert statuses == {"followup-visit": "not-started", "post-discharge-call": "not-started",
                        "medication-reconciliation": "completed"}
    assert read(api, f"Task/{task['id']}")["meta"]["versionId"] == "2"  # nothing more


def test_the_overdue_sweep_flags_open_tasks_past_their_due_date(
        api: TestClient, runner: WorkflowRunner, settings: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    enrol(api)
    discharge(api)
    runner.run_until_idle()
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["tasks", "sweep-overdue", "--today", "2024-03-13"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1 Task(s) flagged overdue" in result.output
    found = tasks(api)
    call = found["post-discharge-call"]
    assert call["businessStatus"]["coding"][0]["code"] == "overdue"
    assert "businessStatus" not in found["followup-visit"]  # due 16 March
    assert len(search(api, "Task", **{"business-status": "overdue"})) == 1
    assert len(runner.sweep_overdue()) == 2  # as of today, every open one is overdue
    call = tasks(api)["post-discharge-call"]
    call["status"] = "completed"
    api.put(f"/fhir/Task/{call['id']}", json=call)
    runner.run_until_idle()
    done = tasks(api)["post-discharge-call"]
    assert done["status"] == "completed" and "businessStatus" not in done


def test_no_active_careplan_no_tasks(api: TestClient, runner: WorkflowRunner) -> None:
    assert send(api, "careteam", example("careteam")).status_code == 201
    plan = dict(example("careplan"), status="completed")
    send(api, "careplan", plan)
    discharge(api)
    runner.run_until_idle()
    assert search(api, "Task", identifier=f"{TASKS}|") == []


def test_a_plan_stored_after_the_discharge_does_not_pick_it_up(
        api: TestClient, runner: WorkflowRunner) -> None:
    discharge(api)
    enrol(api)              # before the runner has read the discharge
    runner.run_until_idle()
    assert search(api, "Task", identifier=f"{TASKS}|") == []


def test_admission_asks_to_contact_the_inpatient_team(api: TestClient,
                                                      runner: WorkflowRunner) -> None:
    enrol(api)
    reply = post(api, sample("north_a01_v25", MRN))
    assert "MSA|AA" in reply.text
    runner.run_until_idle()
    found = tasks(api)
    assert list(found) == ["contact-inpatient-team"]
    # Admitted Tuesday 5 March 2024: one business day.
    assert found["contact-inpatient-team"]["restriction"]["period"]["end"] == "2024-03-06"
    assert found["contact-inpatient-team"]["identifier"][0]["value"].endswith(
        "|admission/contact-inpatient-team")


def test_an_ed_visit_asks_for_a_review(api: TestClient, runner: WorkflowRunner) -> None:
    patient = enrol(api)
    visit = dict(amb_visit(patient, "2024-03-08T22:00:00-05:00"), status="in-progress")
    visit["class"]["code"] = "EMER"
    visit["period"] = {"start": "2024-03-08T22:00:00-05:00"}
    created = api.post("/fhir/Encounter", json=visit).json()
    runner.run_until_idle()
    # Friday evening: two business days are Monday and Tuesday.
    assert {k: t["restriction"]["period"]["end"] for k, t in tasks(api).items()} == {
        "review-ed-visit": "2024-03-12"}
    finished = dict(created, status="finished",
                    period={"start": "2024-03-08T22:00:00-05:00",
                            "end": "2024-03-09T04:00:00-05:00"})
    api.put(f"/fhir/Encounter/{created['id']}", json=finished)
    runner.run_until_idle()
    # Released from the ED: the discharge follow-ups too, and still one review.
    assert sorted(tasks(api)) == ["followup-visit", "medication-reconciliation",
                                  "post-discharge-call", "review-ed-visit"]


def test_program_rules_override_the_defaults(api: TestClient, runner: WorkflowRunner) -> None:
    enrol(api, program="hf")
    discharge(api)
    runner.run_until_idle()
    assert {k: t["restriction"]["period"]["end"] for k, t in tasks(api).items()} == {
        "followup-visit": "2024-03-12", "medication-reconciliation": "2024-03-16",
        "post-discharge-call": "2024-03-11"}


def test_a_resent_plan_keeps_the_followups(api: TestClient, runner: WorkflowRunner) -> None:
    enrol(api)
    discharge(api)
    runner.run_until_idle()
    plan = example("careplan")
    plan["title"] = "Transitional care plan, revised"
    assert send(api, "careplan", plan).status_code == 200
    assert len(plan_activities(api)) == 3
