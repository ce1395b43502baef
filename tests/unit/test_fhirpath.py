"""The compiled FHIRPath subset used by R4 SearchParameter expressions, and the index rows
the search parameters produce from resources."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.fhirpath import UnsupportedExpression, compile_expression, split_union
from gateway.fhir.searchparams import registry
from gateway.store.indexer import index_rows, normalize

PLAN: dict[str, Any] = {
    "resourceType": "CarePlan", "id": "cp", "status": "active", "intent": "plan",
    "subject": {"reference": "Patient/p1"},
    "careTeam": [{"reference": "CareTeam/t1"}, {"reference": "CareTeam/t2"}],
    "period": {"start": "2023-01-01", "end": "2023-06-30"},
    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]}],
    "activity": [
        {"detail": {"status": "scheduled",
                    "scheduledPeriod": {"start": "2023-02-01", "end": "2023-02-28"}}},
        {"detail": {"status": "scheduled",
                    "scheduledTiming": {"event": ["2023-03-01T10:00:00Z"]}}},
        {"detail": {"status": "scheduled", "scheduledString": "daily"}},
    ],
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient", "id": "p1",
    "name": [{"family": "Müller", "given": ["Björn", "B"]}, {"family": "Miller"}],
    "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "b@x.org"}],
    "deceasedDateTime": "2020-01-01",
}


def run(expression: str, resource: dict[str, Any]) -> list[Any]:
    return compile_expression(expression)[resource["resourceType"]](resource)


def test_split_union_ignores_bars_in_parentheses_and_quotes() -> None:
    assert split_union("A.b | B.c.where(x='a|b') | (C.d as dateTime)") == [
        "A.b", "B.c.where(x='a|b')", "(C.d as dateTime)"]


def test_paths_flatten_lists() -> None:
    assert run("Patient.name.given", PATIENT) == ["Björn", "B"]
    assert run("Patient.name.family", PATIENT) == ["Müller", "Miller"]
    assert run("CarePlan.careTeam", PLAN) == PLAN["careTeam"]
    assert run("CarePlan.goal", PLAN) == []


def test_union_over_several_resource_types() -> None:
    compiled = compile_expression("CarePlan.period | CareTeam.period | Encounter.period")
    assert set(compiled) == {"CarePlan", "CareTeam", "Encounter"}
    assert compiled["CarePlan"](PLAN) == [PLAN["period"]]


def test_union_on_one_type_concatenates() -> None:
    assert run("Patient.name.family | Patient.name.given", PATIENT) == [
        "Müller", "Miller", "Björn", "B"]


def test_index() -> None:
    assert run("Patient.name[0].family", PATIENT) == ["Müller"]
    assert run("Patient.name[1].family", PATIENT) == ["Miller"]
    assert run("Patient.name[2].family", PATIENT) == []


def test_choice_elements() -> None:
    scheduled = run("CarePlan.activity.detail.scheduled", PLAN)
    assert scheduled == [PLAN["activity"][0]["detail"]["scheduledPeriod"],
                         PLAN["activity"][1]["detail"]["scheduledTiming"], "daily"]
    assert run("(Patient.deceased as dateTime)", PATIENT) == ["2020-01-01"]
    assert run("Patient.deceased.as(dateTime)", PATIENT) == ["2020-01-01"]


def test_where_resolve_is_type() -> None:
    expression = "CarePlan.subject.where(resolve() is Patient)"
    assert run(expression, PLAN) == [{"reference": "Patient/p1"}]
    grouped = {**PLAN, "subject": {"reference": "Group/g1"}}
    assert run(expression, grouped) == []
    absolute = {**PLAN, "subject": {"reference": "http://x.example.org/fhir/Patient/p9"}}
    assert run(expression, absolute) == [absolute["subject"]]


def test_where_field_equals() -> None:
    assert run("Patient.telecom.where(system='email')", PATIENT) == [
        {"system": "email", "value": "b@x.org"}]
    assert run("Patient.telecom.where(system='fax')", PATIENT) == []


def test_exists_and_not_false() -> None:
    expression = "Patient.deceased.exists() and Patient.deceased != false"
    assert run(expression, PATIENT) == [True]
    assert run(expression, {"resourceType": "Patient"}) == [False]
    assert run(expression, {"resourceType": "Patient", "deceasedBoolean": False}) == [False]
    assert run(expression, {"resourceType": "Patient", "deceasedBoolean": True}) == [True]


def test_unsupported_functions_are_refused() -> None:
    with pytest.raises(UnsupportedExpression):
        compile_expression("Patient.name.first()")


def test_the_r4_parameters_of_the_care_types_compile() -> None:
    wanted = {
        "Patient": {"identifier", "name", "family", "given", "birthdate", "gender", "active",
                    "telecom", "phone", "email", "deceased", "death-date"},
        "CarePlan": {"patient", "subject", "status", "intent", "category", "date",
                     "encounter", "care-team", "identifier", "activity-date"},
        "CareTeam": {"patient", "subject", "status", "category", "participant", "date"},
        "Encounter": {"patient", "subject", "status", "class", "type", "date", "identifier",
                      "location", "participant", "service-provider", "reason-code"},
        "Task": {"patient", "focus", "status", "owner", "code", "authored-on"},
        "Provenance": {"target", "patient", "agent"},
    }
    for resource_type, codes in wanted.items():
        known = set(registry().for_type(resource_type))
        assert codes <= known, (resource_type, codes - known)
        assert {"_id", "_lastUpdated"} <= known


def _rows(resource: dict[str, Any], kind: str, param: str) -> list[dict[str, Any]]:
    rows = index_rows(resource["resourceType"], resource).get(kind, [])
    return [{k: v for k, v in r.items() if k not in ("type", "param")}
            for r in rows if r["param"] == param]


def test_index_rows_for_tokens() -> None:
    assert _rows(PLAN, "token", "category") == [
        {"system": "http://snomed.info/sct", "code": "734163000"}]
    # A primitive code is indexed with the system its required binding implies.
    assert _rows(PLAN, "token", "status") == [
        {"system": "http://hl7.org/fhir/request-status", "code": "active"}]
    assert _rows(PATIENT, "token", "email") == [{"system": "email", "code": "b@x.org"}]
    assert _rows(PATIENT, "token", "deceased") == [{"system": None, "code": "true"}]
    identifier = {"resourceType": "Patient",
                  "identifier": [{"system": "urn:mrn", "value": "7",
                                  "type": {"coding": [{"code": "MR"}]}}]}
    assert _rows(identifier, "token", "identifier") == [{"system": "urn:mrn", "code": "7"}]


def test_index_rows_for_references() -> None:
    assert _rows(PLAN, "reference", "care-team") == [
        {"target_type": "CareTeam", "target_id": "t1", "url": None},
        {"target_type": "CareTeam", "target_id": "t2", "url": None}]
    assert _rows(PLAN, "reference", "patient") == [
        {"target_type": "Patient", "target_id": "p1", "url": None}]
    grouped = {**PLAN, "subject": {"reference": "Group/g1"}}
    assert _rows(grouped, "reference", "patient") == []


def test_index_rows_for_strings_are_normalized() -> None:
    values = {r["value"] for r in _rows(PATIENT, "string", "name")}
    assert {"muller", "bjorn", "b", "miller"} <= values
    exact = {r["exact"] for r in _rows(PATIENT, "string", "family")}
    assert exact == {"Müller", "Miller"}
    assert normalize("ÉLODIE Straße") == "elodie strasse"


def test_index_rows_for_dates() -> None:
    [period] = _rows(PLAN, "date", "date")
    assert period["low"] < period["high"]
    activity = _rows(PLAN, "date", "activity-date")
    assert len(activity) == 2  # the period and the timing event; the string is no date
    open_ended = {**PLAN, "period": {"start": "2024-01-01"}}
    [row] = _rows(open_ended, "date", "date")
    assert row["high"] > 1e11
