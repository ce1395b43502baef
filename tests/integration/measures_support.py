"""Builders for the measures tests: resources written through the FHIR API with readable ids,
so traced references in the answers can be compared with the fixture by name."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
PCP_ROLE = {"coding": [{"system": SNOMED, "code": "446050000",
                        "display": "Primary care physician"}]}
CARE_MANAGER_ROLE = {"text": "care manager"}


def put(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Create or update a resource at its id; the stored resource."""
    response = api.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def encounter(encounter_id: str, patient: str, klass: str, start: str, end: str | None = None,
              status: str = "finished", *, elective: bool = False,
              died: bool = False) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    body: dict[str, Any] = {
        "resourceType": "Encounter", "id": encounter_id, "status": status,
        "class": {"system": ACT_CODE, "code": klass},
        "subject": {"reference": f"Patient/{patient}"}, "period": period}
    if elective:
        body["priority"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                  "v3-ActPriority", "code": "EL"}]}
    if died:
        body["hospitalization"] = {"dischargeDisposition": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
            "code": "exp"}]}}
    return body


def patient(api: TestClient, patient_id: str) -> str:
    put(api, {"resourceType": "Patient", "id": patient_id, "name": [{"family": patient_id}]})
    return patient_id


def organization(api: TestClient, org_id: str, endpoint: str | None = None) -> str:
    body: dict[str, Any] = {"resourceType": "Organization", "id": org_id, "name": org_id}
    if endpoint:
        body["endpoint"] = [{"reference": f"Endpoint/{endpoint}"}]
    put(api, body)
    return f"Organization/{org_id}"


def practitioner(api: TestClient, practitioner_id: str) -> str:
    put(api, {"resourceType": "Practitioner", "id": practitioner_id,
              "name": [{"family": practitioner_id}]})
    return f"Practitioner/{practitioner_id}"


def care_team(api: TestClient, team_id: str, patient_id: str,
              participants: list[dict[str, Any]], **extra: Any) -> None:
    put(api, {"resourceType": "CareTeam", "id": team_id, "status": "active",
              "subject": {"reference": f"Patient/{patient_id}"},
              "participant": participants, **extra})


def member(reference: str, role: dict[str, Any] | None = None,
           on_behalf_of: str | None = None) -> dict[str, Any]:
    participant: dict[str, Any] = {"member": {"reference": reference}}
    if role:
        participant["role"] = [role]
    if on_behalf_of:
        participant["onBehalfOf"] = {"reference": on_behalf_of}
    return participant
