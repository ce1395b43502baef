"""Parsing search parameters into a ``SearchRequest`` (R4 search.html), without a database."""

from __future__ import annotations

import calendar

import pytest

from gateway.errors import GatewayError
from gateway.fhir.dates import INFINITY, parse_range, period_range
from gateway.search import values as v
from gateway.search.request import parse_search

BASE = "http://testserver/fhir"


def _epoch(year: int, month: int, day: int) -> float:
    return float(calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0)))


# -- tokens ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "system", "code", "has_system"), [
    ("http://loinc.org|1234-5", "http://loinc.org", "1234-5", True),
    ("|1234-5", None, "1234-5", True),
    ("http://loinc.org|", "http://loinc.org", None, True),
    ("1234-5", None, "1234-5", False),
    ("urn:example:ids|a\\|b", "urn:example:ids", "a|b", True),
    ("a\\|b", None, "a|b", False),
    ("sys\\|tem|code", "sys|tem", "code", True),
    ("a\\,b", None, "a,b", False),
])
def test_token_values(text: str, system: str | None, code: str | None,
                      has_system: bool) -> None:
    value = v.parse_token(text)
    assert (value.system, value.code, value.has_system) == (system, code, has_system)


@pytest.mark.parametrize(("text", "alternatives"), [
    ("a,b,c", ["a", "b", "c"]),
    ("a\\,b,c", ["a\\,b", "c"]),
    ("single", ["single"]),
    ("a,,b", ["a", "", "b"]),
    ("x\\\\,y", ["x\\\\", "y"]),
])
def test_or_values_split_on_unescaped_commas(text: str, alternatives: list[str]) -> None:
    assert v.or_values(text) == alternatives


def test_plain_values_are_unescaped() -> None:
    assert v.parse_plain("Smith\\,Jones").raw == "Smith,Jones"
    assert v.parse_plain("a\\$b\\|c").raw == "a$b|c"


# -- dates -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "low", "high"), [
    ("2023", _epoch(2023, 1, 1), _epoch(2024, 1, 1)),
    ("2023-02", _epoch(2023, 2, 1), _epoch(2023, 3, 1)),
    ("2024-02", _epoch(2024, 2, 1), _epoch(2024, 3, 1)),  # leap year
    ("2023-12-31", _epoch(2023, 12, 31), _epoch(2024, 1, 1)),
    ("2023-03-10T09:00:00Z", _epoch(2023, 3, 10) + 9 * 3600, _epoch(2023, 3, 10) + 9 * 3600 + 1),
    ("2023-03-10T09:00:00+01:00", _epoch(2023, 3, 10) + 8 * 3600,
     _epoch(2023, 3, 10) + 8 * 3600 + 1),
    ("2023-03-10T03:00:00-05:00", _epoch(2023, 3, 10) + 8 * 3600,
     _epoch(2023, 3, 10) + 8 * 3600 + 1),
    ("2023-03-10T09:00:00.250Z", _epoch(2023, 3, 10) + 9 * 3600 + 0.25,
     _epoch(2023, 3, 10) + 9 * 3600 + 0.251),
])
def test_date_ranges_cover_their_precision(text: str, low: float, high: float) -> None:
    found = parse_range(text)
    assert found is not None
    assert found[0] == pytest.approx(low, abs=1e-5)
    assert found[1] == pytest.approx(high, abs=1e-5)
    assert found[1] < high  # the end is exclusive


@pytest.mark.parametrize("text", ["", "23", "2023-13", "2023-02-30", "2023-1-5", "yesterday",
                                  "2023-03-10T25:00:00Z", "2023-03-10T10:00:00+0100",
                                  "2023/03/10"])
def test_invalid_dates(text: str) -> None:
    assert parse_range(text) is None


def test_open_periods() -> None:
    start_only = period_range({"start": "2024-01-01"})
    assert start_only == (pytest.approx(_epoch(2024, 1, 1)), INFINITY)
    end_only = period_range({"end": "2021-12-31"})
    assert end_only is not None
    assert end_only[0] == -INFINITY
    assert end_only[1] == pytest.approx(_epoch(2022, 1, 1), abs=1e-5)


@pytest.mark.parametrize(("text", "prefix"), [
    ("2023", "eq"), ("eq2023", "eq"), ("ne2023", "ne"), ("gt2023", "gt"), ("lt2023", "lt"),
    ("ge2023-01", "ge"), ("le2023-01-01", "le"), ("sa2023", "sa"), ("eb2023", "eb"),
    ("ap2023", "ap"),
])
def test_date_prefixes(text: str, prefix: str) -> None:
    value = v.parse_date("date", text)
    assert value.prefix == prefix
    assert value.low == pytest.approx(_epoch(2023, 1, 1), abs=1e-5)


@pytest.mark.parametrize("text", ["xx2023", "gt", "2023-13", "ge 2023", "GT2023"])
def test_invalid_date_values_name_the_parameter(text: str) -> None:
    with pytest.raises(GatewayError) as raised:
        v.parse_date("birthdate", text)
    assert raised.value.status == 400
    assert raised.value.expression == ["birthdate"]


# -- references ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ref_type", "ref_id", "url"), [
    ("Patient/123", "Patient", "123", None),
    ("123", None, "123", None),
    (f"{BASE}/Patient/123", "Patient", "123", None),
    ("http://elsewhere.example.org/fhir/Patient/123", None, None,
     "http://elsewhere.example.org/fhir/Patient/123"),
    ("urn:uuid:7d4a2a5e-0000-4000-8000-000000000001", None, None,
     "urn:uuid:7d4a2a5e-0000-4000-8000-000000000001"),
])
def test_reference_values(text: str, ref_type: str | None, ref_id: str | None,
                          url: str | None) -> None:
    value = v.parse_reference_value("subject", text, BASE)
    assert (value.ref_type, value.ref_id, value.url) == (ref_type, ref_id, url)


@pytest.mark.parametrize("text", ["Patient/", "a b", "Patient/1/2/3", ""])
def test_invalid_references(text: str) -> None:
    with pytest.raises(GatewayError) as raised:
        v.parse_reference_value("subject", text, BASE)
    assert raised.value.expression == ["subject"]


# -- whole requests --------------------------------------------------------------------------

def test_criteria_are_anded_and_values_ored() -> None:
    request = parse_search("Patient", [("family", "okafor,nwosu"), ("gender", "female"),
                                       ("family", "o")])
    assert [c.name for c in request.criteria] == ["family", "gender", "family"]
    assert [x.raw for x in request.criteria[0].values] == ["okafor", "nwosu"]
    assert request.ignored == []


def test_modifiers_and_missing() -> None:
    request = parse_search("Patient", [("family:exact", "Okafor"), ("gender:not", "male"),
                                       ("birthdate:missing", "true")])
    exact, not_, missing = request.criteria
    assert (exact.modifier, exact.values[0].raw) == ("exact", "Okafor")
    assert not_.modifier == "not"
    assert (missing.modifier, missing.missing) == ("missing", True)


def test_reference_type_modifier() -> None:
    [criterion] = parse_search("CarePlan", [("subject:Patient", "123")]).criteria
    assert criterion.target_types == ("Patient",)
    assert criterion.values[0].ref_id == "123"


def test_chained_parameters() -> None:
    [typed] = parse_search("CarePlan", [("subject:Patient.identifier", "urn:mrn|7")]).criteria
    assert typed.target_types == ("Patient",)
    assert typed.chain[0].param.code == "identifier"
    assert (typed.chain[0].values[0].system, typed.chain[0].values[0].code) == ("urn:mrn", "7")
    [untyped] = parse_search("CarePlan", [("patient.name", "okafor")]).criteria
    assert "Patient" in untyped.target_types
    [nested] = parse_search("CarePlan", [("care-team.subject:Patient.name", "x")]).criteria
    assert nested.chain[0].chain[0].param.code == "name"


def test_control_parameters() -> None:
    request = parse_search("CarePlan", [
        ("_count", "10"), ("_sort", "-date,status,_id"), ("_summary", "count"),
        ("_elements", "title, status"), ("_include", "CarePlan:patient"),
        ("_include", "CarePlan:subject:Patient"), ("_revinclude", "Provenance:target"),
        ("_include", "*")])
    assert request.count == 10
    assert [(k.name, k.descending) for k in request.sort] == [
        ("date", True), ("status", False), ("_id", False)]
    assert request.summary == "count"
    assert request.elements == ["title", "status"]
    assert [(i.source, i.param, i.target) for i in request.include] == [
        ("CarePlan", "patient", None), ("CarePlan", "subject", "Patient"), ("*", None, None)]
    assert [(i.source, i.param) for i in request.revinclude] == [("Provenance", "target")]
    assert request.criteria == []


def test_count_defaults_and_is_capped() -> None:
    assert parse_search("Patient", []).count == 50
    assert parse_search("Patient", [("_count", "5000")], max_count=1000).count == 1000


def test_unknown_parameters_are_listed_or_refused_when_strict() -> None:
    request = parse_search("Patient", [("colour", "blue"), ("family", "x"),
                                       ("status", "active")])
    assert request.ignored == ["colour", "status"]
    assert [c.name for c in request.criteria] == ["family"]
    assert request.self_params([("colour", "blue"), ("family", "x")]) == [("family", "x")]
    with pytest.raises(GatewayError) as raised:
        parse_search("Patient", [("colour", "blue")], strict=True)
    assert raised.value.status == 400
    assert raised.value.expression == ["colour"]


def test_include_iterate_is_understood() -> None:
    """R4 writes iteration as a modifier of the parameter name: ``_include:iterate``."""
    request = parse_search("CarePlan", [("_include", "CarePlan:care-team"),
                                        ("_include:iterate", "CareTeam:participant")])
    assert request.ignored == []
    assert [(i.source, i.param, i.iterate) for i in request.include] == [
        ("CarePlan", "care-team", False), ("CareTeam", "participant", True)]


@pytest.mark.parametrize(("params", "expression"), [
    ([("birthdate", "1948-13-01")], "birthdate"),
    ([("gender:exact", "female")], "gender:exact"),
    ([("family:below", "x")], "family:below"),
    ([("subject:missing", "maybe")], "subject:missing"),
    ([("_count", "x")], "_count"),
    ([("_sort", "nope")], "_sort"),
    ([("_summary", "nope")], "_summary"),
    ([("_include", "CarePlan:status")], "_include"),
    ([("_revinclude", "Nope:subject")], "_revinclude"),
    ([("status.name", "x")], "status.name"),
])
def test_invalid_parameters_raise_400_naming_them(params: list[tuple[str, str]],
                                                  expression: str) -> None:
    resource_type = "Patient" if params[0][0].startswith(("birthdate", "gender", "family",
                                                          "_count", "_sort",
                                                          "_summary")) else "CarePlan"
    with pytest.raises(GatewayError) as raised:
        parse_search(resource_type, params, base_url=BASE)
    assert raised.value.status == 400
    assert raised.value.expression == [expression]
