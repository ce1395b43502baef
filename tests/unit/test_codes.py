"""Required-binding code checks (gateway.fhir.codes) against official and mutated R4 examples."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.fhir.codes import CodeIssue, check_codes, checked_resource_types

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "fhir-examples"
# The full official example package is optional: the exhaustive test runs only where it exists.
PACKAGE_DIR = Path(os.environ.get("FHIR_R4_PACKAGE", "/tmp/fhirdata/package"))
PACKAGE_TYPES = ["Encounter", "CarePlan", "CareTeam", "Patient", "Task", "Observation"]


def load_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))


def expressions(issues: list[CodeIssue]) -> list[str]:
    return [issue.expression for issue in issues]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES_DIR.glob("*.json")))
def test_checked_in_official_examples_pass(name: str) -> None:
    assert check_codes(load_example(name)) == []


def _package_examples(resource_type: str) -> list[Path]:
    paths = []
    for path in sorted(PACKAGE_DIR.glob(f"{resource_type}-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("resourceType") == resource_type:
            paths.append(path)
    return paths


@pytest.mark.parametrize("resource_type", PACKAGE_TYPES)
def test_all_package_examples_of_type_pass(resource_type: str) -> None:
    if not PACKAGE_DIR.is_dir():
        pytest.skip(f"official R4 example package not found at {PACKAGE_DIR}")
    paths = _package_examples(resource_type)
    assert paths, f"no {resource_type} examples in {PACKAGE_DIR}"
    failures = {
        path.name: issues
        for path in paths
        if (issues := check_codes(json.loads(path.read_text(encoding="utf-8"))))
    }
    assert failures == {}


def _set(example: str, location: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """Load ``example`` and set the element at ``location`` (keys/indexes) to ``value``."""
    resource = load_example(example)
    target: Any = resource
    for step in location[:-1]:
        target = target[step]
    target[location[-1]] = value
    return resource


@pytest.mark.parametrize(
    ("example", "location", "expression"),
    [
        ("Encounter-example.json", ("status",), "Encounter.status"),
        ("Patient-example.json", ("gender",), "Patient.gender"),
        ("Patient-example.json", ("telecom", 1, "system"), "Patient.telecom[1].system"),
        ("Patient-example.json", ("name", 0, "use"), "Patient.name[0].use"),
        (
            "Observation-example.json",
            ("valueQuantity", "comparator"),
            "Observation.valueQuantity.comparator",
        ),
        ("Observation-example.json", ("status",), "Observation.status"),
        (
            "CarePlan-example.json",
            ("activity", 0, "detail", "status"),
            "CarePlan.activity[0].detail.status",
        ),
        ("CarePlan-example.json", ("intent",), "CarePlan.intent"),
        ("CareTeam-example.json", ("status",), "CareTeam.status"),
        ("Task-example1.json", ("intent",), "Task.intent"),
        ("Task-example1.json", ("status",), "Task.status"),
        ("CarePlan-example.json", ("text", "status"), "CarePlan.text.status"),
    ],
)
def test_bogus_code_is_reported_at_its_expression(
    example: str, location: tuple[str | int, ...], expression: str
) -> None:
    issues = check_codes(_set(example, location, "bogus"))
    assert expressions(issues) == [expression]
    assert issues[0].message.startswith(f"Unknown code 'bogus' for {expression}; expected one of: ")


@pytest.mark.parametrize("code", ["Finished", "finished ", "", "in progress"])
def test_codes_are_matched_exactly_and_case_sensitively(code: str) -> None:
    issues = check_codes(_set("Encounter-example.json", ("status",), code))
    assert expressions(issues) == ["Encounter.status"]


def test_message_lists_expected_codes_in_definition_order() -> None:
    (issue,) = check_codes(_set("Encounter-example.json", ("status",), "bogus"))
    assert issue.message == (
        "Unknown code 'bogus' for Encounter.status; expected one of: planned, arrived, triaged, "
        "in-progress, onleave, finished, cancelled, entered-in-error, unknown"
    )


def test_long_code_lists_are_truncated() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "bogus"}],
    }
    (issue,) = check_codes(outcome)
    assert issue.expression == "OperationOutcome.issue[0].code"
    assert "more, see http://hl7.org/fhir/ValueSet/issue-type)" in issue.message
    assert len(issue.message) < 300


@pytest.mark.parametrize(
    ("contained", "expression"),
    [
        (
            {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "bogus"},
            "CarePlan.contained[1].lifecycleStatus",
        ),
        (
            {"resourceType": "ServiceRequest", "id": "sr1", "status": "bogus", "intent": "order"},
            "CarePlan.contained[1].status",
        ),
        (
            {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {}},
            None,
        ),
    ],
)
def test_contained_resources_are_checked_against_their_own_type(
    contained: dict[str, Any], expression: str | None
) -> None:
    care_plan = load_example("CarePlan-example.json")
    care_plan["contained"].append(contained)
    assert expressions(check_codes(care_plan)) == ([expression] if expression else [])


def test_several_issues_are_all_reported_in_document_order() -> None:
    patient = load_example("Patient-example.json")
    patient["gender"] = "m"
    patient["telecom"][0]["use"] = "holiday"
    patient["telecom"][3]["system"] = "pigeon"
    assert expressions(check_codes(patient)) == [
        "Patient.telecom[0].use",
        "Patient.telecom[3].system",
        "Patient.gender",
    ]


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        # Choice type inside an extension value.
        (
            {
                "resourceType": "Patient",
                "extension": [
                    {"url": "http://example.org/x", "valueQuantity": {"comparator": "=="}}
                ],
            },
            "Patient.extension[0].valueQuantity.comparator",
        ),
        # Nested extensions and modifier extensions.
        (
            {
                "resourceType": "Encounter",
                "status": "finished",
                "modifierExtension": [
                    {
                        "url": "http://example.org/a",
                        "extension": [
                            {"url": "b", "valueContactPoint": {"system": "telex"}},
                        ],
                    }
                ],
            },
            "Encounter.modifierExtension[0].extension[0].valueContactPoint.system",
        ),
        # contentReference: Questionnaire.item.item -> #Questionnaire.item.
        (
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [
                    {
                        "linkId": "1",
                        "type": "group",
                        "item": [
                            {
                                "linkId": "1.1",
                                "type": "group",
                                "item": [
                                    {"linkId": "1.1.1", "type": "question"},
                                ],
                            }
                        ],
                    }
                ],
            },
            "Questionnaire.item[0].item[0].item[0].type",
        ),
        # Arrays of codes (code[] with a required binding).
        (
            {
                "resourceType": "AllergyIntolerance",
                "category": ["food", "bogus"],
                "patient": {"reference": "Patient/1"},
            },
            "AllergyIntolerance.category[1]",
        ),
        # Resources inside a Bundle are checked against their own type.
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "gender": "female"},
                        "request": {"method": "POST", "url": "Patient"},
                    },
                    {
                        "resource": {"resourceType": "Encounter", "status": "bogus"},
                        "request": {"method": "POST", "url": "Encounter"},
                    },
                ],
            },
            "Bundle.entry[1].resource.status",
        ),
        # Datatype inside a backbone element inside a datatype (Timing.repeat.periodUnit).
        (
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "activity": [
                    {
                        "detail": {
                            "status": "scheduled",
                            "scheduledTiming": {
                                "repeat": {"frequency": 1, "period": 1, "periodUnit": "week"},
                            },
                        }
                    }
                ],
            },
            "CarePlan.activity[0].detail.scheduledTiming.repeat.periodUnit",
        ),
    ],
)
def test_codes_are_found_in_nested_structures(resource: dict[str, Any], expression: str) -> None:
    assert expressions(check_codes(resource)) == [expression]


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"resourceType": "NotAResource", "status": "bogus"},
        {"resourceType": 42},
        # Wrong JSON types, unknown keys and primitive extensions are structural concerns.
        {"resourceType": "Encounter", "status": 7, "statusHistory": "x", "foo": {"status": "x"}},
        {"resourceType": "Encounter", "status": "planned", "_status": {"id": "bogus"}},
        {"resourceType": "Encounter", "status": "planned", "contained": [{"status": "bogus"}]},
        # Required bindings whose value set cannot be expanded locally are not checked.
        {"resourceType": "Binary", "contentType": "not/a-real-mime-type"},
    ],
)
def test_things_outside_the_scope_of_this_check_are_ignored(resource: dict[str, Any]) -> None:
    assert check_codes(resource) == []


def test_input_is_not_modified() -> None:
    care_plan = load_example("CarePlan-example.json")
    care_plan["status"] = "bogus"
    before = copy.deepcopy(care_plan)
    check_codes(care_plan)
    assert care_plan == before


def test_checked_types_cover_the_care_coordination_resources() -> None:
    assert set(PACKAGE_TYPES) <= checked_resource_types()


def test_code_issue_is_immutable() -> None:
    issue = CodeIssue(expression="Encounter.status", message="m")
    with pytest.raises(AttributeError):
        issue.message = "changed"  # type: ignore[misc]
