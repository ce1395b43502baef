"""A patient's story written through the FHIR API, for the timeline tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

PATIENT = "tl-1"
FOLLOW_UP_SYSTEM = "http://fhir-care-gateway.org/CodeSystem/task-business-status"


def put(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def encounter(status: str, locations: list[dict[str, Any]], period: dict[str, str],
              **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": "tl-enc", "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP"},
            "subject": {"reference": f"Patient/{PATIENT}"}, "period": period,
            "serviceProvider": {"reference": "Organization/tl-hosp"},
            "location": locations, **extra}


def task(task_id: str, description: str, status: str, due: str, *,
         overdue: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Task", "id": task_id, "status": status, "intent": "order",
        "description": description, "for": {"reference": f"Patient/{PATIENT}"},
        "basedOn": [{"reference": "CarePlan/tl-plan"}],
        "owner": {"reference": "Practitioner/tl-cm"},
        "authoredOn": "2026-11-20T12:00:00Z",
        "restriction": {"period": {"end": due}}}
    if overdue:
        body["businessStatus"] = {"coding": [{"system": FOLLOW_UP_SYSTEM, "code": "overdue"}]}
    return body


def ward(ward_id: str, start: str, end: str | None = None) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {"location": {"reference": f"Location/{ward_id}"}, "period": period,
            **({"status": "completed"} if end else {"status": "active"})}


def write_story(client: TestClient) -> None:
    """Admission, transfer, discharge; a plan that gains a goal and an activity; a care team
    member who joins and one who leaves; follow-up tasks: completed, flagged overdue, and
    past due."""
    for body in (
        {"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Mbeki",
                                                             "given": ["Thandi"]}],
         "identifier": [{"system": "urn:mrn", "value": "TL-0001"}]},
        {"resourceType": "Organization", "id": "tl-hosp", "name": "Harbor General Hospital"},
        {"resourceType": "Location", "id": "tl-icu", "name": "ICU bed 3"},
        {"resourceType": "Location", "id": "tl-4w", "name": "Ward 4W bed 12"},
        {"resourceType": "Practitioner", "id": "tl-cm", "name": [{"family": "Reyes",
                                                                  "given": ["Ana"]}]},
        {"resourceType": "Practitioner", "id": "tl-pcp", "name": [{"family": "Lee",
                                                                   "given": ["Sam"]}]},
        {"resourceType": "Goal", "id": "tl-goal-1", "lifecycleStatus": "active",
         "description": {"text": "HbA1c below 8%"}, "subject": {"reference":
                                                                f"Patient/{PATIENT}"}},
        {"resourceType": "Goal", "id": "tl-goal-2", "lifecycleStatus": "active",
         "description": {"text": "No readmission in 30 days"},
         "subject": {"reference": f"Patient/{PATIENT}"}},
    ):
        put(client, body)
    put(client, encounter("in-progress", [ward("tl-icu", "2026-11-10T08:00:00Z")],
                          {"start": "2026-11-10T08:00:00Z"}))
    put(client, encounter("in-progress", [ward("tl-icu", "2026-11-10T08:00:00Z",
                                               "2026-11-12T09:00:00Z"),
                                          ward("tl-4w", "2026-11-12T09:00:00Z")],
                          {"start": "2026-11-10T08:00:00Z"}))
    put(client, encounter("finished", [ward("tl-icu", "2026-11-10T08:00:00Z",
                                            "2026-11-12T09:00:00Z"),
                                       ward("tl-4w", "2026-11-12T09:00:00Z",
                                            "2026-11-14T11:00:00Z")],
                          {"start": "2026-11-10T08:00:00Z", "end": "2026-11-14T11:00:00Z"},
                          hospitalization={"dischargeDisposition": {"text": "home"}}))
    team = {"resourceType": "CareTeam", "id": "tl-team", "status": "active",
            "name": "Thandi's care team", "subject": {"reference": f"Patient/{PATIENT}"},
            "participant": [
                {"role": [{"text": "care manager"}],
                 "member": {"reference": "Practitioner/tl-cm"},
                 "period": {"start": "2026-11-01"}},
                {"role": [{"text": "primary care physician"}],
                 "member": {"reference": "Practitioner/tl-pcp"},
                 "period": {"start": "2026-11-01"}}]}
    put(client, team)
    team["participant"][1]["period"]["end"] = "2026-11-15"
    put(client, team)
    plan = {"resourceType": "CarePlan", "id": "tl-plan", "status": "active", "intent": "plan",
            "title": "Transitional care plan", "subject": {"reference": f"Patient/{PATIENT}"},
            "careTeam": [{"reference": "CareTeam/tl-team"}],
            "goal": [{"reference": "Goal/tl-goal-1"}]}
    put(client, plan)
    put(client, task("tl-visit", "Follow-up visit within 7 days", "requested",
                     "2026-11-21", overdue=True))
    put(client, task("tl-call", "Post-discharge call", "completed", "2026-11-16"))
    put(client, task("tl-meds", "Medication reconciliation", "requested", "2026-11-18"))
    plan["goal"].append({"reference": "Goal/tl-goal-2"})
    plan["activity"] = [{"reference": {"reference": "Task/tl-visit"}},
                        {"detail": {"status": "scheduled", "description": "Weekly weight check"}}]
    put(client, plan)
