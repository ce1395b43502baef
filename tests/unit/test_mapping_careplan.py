"""Plan and roster mapping rules: schema faults named by JSON pointer, unknown codes kept as
text with a warning, required codes refused, stable ids, and the planned shape of CarePlan,
Task and CareTeam (MCC eCare Plan: activity.reference -> Task)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.mapping.careplan import map_careplan
from gateway.mapping.careteam import map_careteam, participant_key
from gateway.mapping.issues import MappingError
from gateway.mapping.plancommon import PATIENT
from gateway.mapping.planrules import PlanMappings
from gateway.mapping.planschema import SourceDocumentInvalid

MAPPINGS = Path(__file__).parents[2] / "mappings"
EXAMPLES = MAPPINGS / "schemas" / "examples"


@pytest.fixture(scope="module")
def mappings() -> PlanMappings:
    return PlanMappings.load(MAPPINGS)


@pytest.fixture
def plan() -> dict[str, Any]:
    return json.loads((EXAMPLES / "careplan.json").read_text())


@pytest.fixture
def roster() -> dict[str, Any]:
    return json.loads((EXAMPLES / "careteam.json").read_text())


def _faults(mappings: PlanMappings, document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SourceDocumentInvalid) as caught:
        map_careplan(mappings.careplan, document)
    return {issue["expression"][0]: str(issue["diagnostics"])
            for issue in caught.value.issues()}


def test_schema_faults_name_json_pointers(mappings: PlanMappings,
                                          plan: dict[str, Any]) -> None:
    plan["riskFactors"][2]["code"] = 7
    del plan["riskFactors"][1]["code"]
    plan["interventions"][0]["owner"] = {"family": "Nobody"}
    plan["outreachWindow"]["end"] = "06/03/2026"
    plan["colour"] = "blue"
    faults = _faults(mappings, plan)
    assert set(faults) == {"/riskFactors/2/code", "/riskFactors/1/code",
                           "/interventions/0/owner", "/outreachWindow/end", "/colour"}
    assert "is required" in faults["/riskFactors/1/code"]
    assert "npi, id" in faults["/interventions/0/owner"]


def test_missing_patient_identifiers_are_refused(mappings: PlanMappings,
                                                 plan: dict[str, Any]) -> None:
    plan["patient"]["identifiers"] = []
    assert set(_faults(mappings, plan)) == {"/patient/identifiers"}
    del plan["patient"]
    assert set(_faults(mappings, plan)) == {"/patient"}


def test_not_an_object_is_refused(mappings: PlanMappings) -> None:
    assert set(_faults(mappings, [1, 2])) == {"/"}  # type: ignore[arg-type]


def test_unknown_codes_are_kept_as_text_and_reported(mappings: PlanMappings,
                                                     plan: dict[str, Any]) -> None:
    plan["riskFactors"][0]["code"] = "gremlins"
    mapped = map_careplan(mappings.careplan, plan)
    condition = next(r for r in mapped.resources if r["resourceType"] == "Condition")
    assert condition["code"]["coding"] == [
        {"system": "http://fhir-care-gateway.org/CodeSystem/risk-factor", "code": "gremlins"}]
    assert condition["code"]["text"] == "HbA1c 9.8% in December"
    assert "/riskFactors/0/code" in {i.location for i in mapped.issues}


def test_unknown_required_status_is_an_error_naming_the_field(
        mappings: PlanMappings, plan: dict[str, Any]) -> None:
    plan["status"] = "paused-ish"
    with pytest.raises(MappingError) as caught:
        map_careplan(mappings.careplan, plan)
    assert caught.value.expression == ["/status"]


def test_ids_are_stable_and_depend_on_the_source_identifier(
        mappings: PlanMappings, plan: dict[str, Any]) -> None:
    first = map_careplan(mappings.careplan, plan)
    again = map_careplan(mappings.careplan, copy.deepcopy(plan))
    assert [r["id"] for r in first.resources] == [r["id"] for r in again.resources]
    plan["planId"] = "CP-OTHER"
    other = map_careplan(mappings.careplan, plan)
    assert other.resources[0]["id"] != first.resources[0]["id"]


def test_careplan_shape(mappings: PlanMappings, plan: dict[str, Any]) -> None:
    mapped = map_careplan(mappings.careplan, plan)
    careplan = mapped.resources[0]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in mapped.resources[1:]:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert careplan["intent"] == "plan" and careplan["status"] == "active"
    assert careplan["period"] == {"start": "2026-01-05", "end": "2026-03-06"}
    assert careplan["subject"] == {"reference": PATIENT}
    assert [a["reference"]["reference"] for a in careplan["activity"]] == [
        f"Task/{t['id']}" for t in by_type["Task"]]
    assert [g["reference"] for g in careplan["goal"]] == [
        f"Goal/{g['id']}" for g in by_type["Goal"]]
    assert len(careplan["addresses"]) == len(by_type["Condition"]) == 3
    task = by_type["Task"][0]
    assert task["restriction"] == {"period": {"end": "2026-01-20"}}
    assert task["status"] == "in-progress" and task["intent"] == "plan"
    assert task["focus"] == careplan["addresses"][1]  # rf-2, the first it names
    assert "basedOn" not in task  # no cycle: the plan stays deletable
    goal = by_type["Goal"][0]
    assert goal["target"] == [{"dueDate": "2026-03-01"}]
    assert goal["addresses"] == [careplan["addresses"][0]]


def test_careteam_members_become_participants(mappings: PlanMappings,
                                              roster: dict[str, Any]) -> None:
    mapped = map_careteam(mappings.careteam, roster)
    team = mapped.resources[0]
    assert [p["id"] for p in team["participant"]] == [
        participant_key(m) for m in roster["members"]]
    caregiver = team["participant"][3]
    assert caregiver["member"]["reference"].startswith("urn:party:RelatedPerson:")
    lead = team["participant"][0]
    assert lead["extension"][0]["valueBoolean"] is True
    roles = [r for r in mapped.resources if r["resourceType"] == "PractitionerRole"]
    assert len(roles) == 2  # the two members with an organization
    assert mapped.ended_on == "2026-01-05"


def test_repeated_ids_are_refused_naming_the_repeat(mappings: PlanMappings,
                                                    plan: dict[str, Any],
                                                    roster: dict[str, Any]) -> None:
    plan["interventions"][2]["id"] = "i-1"
    with pytest.raises(MappingError) as caught:
        map_careplan(mappings.careplan, plan)
    assert caught.value.expression == ["/interventions/2"]
    roster["members"].append(dict(roster["members"][1]))
    with pytest.raises(MappingError) as caught:
        map_careteam(mappings.careteam, roster)
    assert caught.value.expression == ["/members/4"]
