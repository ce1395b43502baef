"""What a search returns besides the matches: _include/_revinclude, _sort, _elements,
unknown parameters, strict handling and errors (R4 search.html), on the ``CARE_DATA`` set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_search import (
    BASE,
    SUBSETTED,
    care_gateway,
    entries,
    included,
    link,
    match_ids,
    outcome_issues,
    pairs,
    refused,
    search,
)


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with care_gateway(tmp_path_factory.mktemp("care")) as client:
        yield client


# -- _include and _revinclude ----------------------------------------------------------------

INCLUDE_CASES: list[tuple[str, str, set[str], set[str]]] = [
    ("CarePlan", "_id=cp-ada&_include=CarePlan:patient", {"cp-ada"}, {"Patient/pat-ada"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:subject", {"cp-ada"}, {"Patient/pat-ada"}),
    ("CarePlan", "_id=cp-group&_include=CarePlan:subject", {"cp-group"}, {"Group/grp-1"}),
    ("CarePlan", "_id=cp-group&_include=CarePlan:patient", {"cp-group"}, set()),
    ("CarePlan", "_id=cp-ada,cp-group&_include=CarePlan:subject:Patient",
     {"cp-ada", "cp-group"}, {"Patient/pat-ada"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:care-team", {"cp-ada"}, {"CareTeam/ct-ada"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:patient&_include=CarePlan:care-team",
     {"cp-ada"}, {"Patient/pat-ada", "CareTeam/ct-ada"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:encounter", {"cp-ada"},
     {"Encounter/enc-ada-1"}),
    ("CarePlan", "patient=pat-ada&_include=CarePlan:patient", {"cp-ada", "cp-ada-old"},
     {"Patient/pat-ada"}),
    ("CarePlan", "status=active&_include=CarePlan:care-team", {"cp-ada", "cp-group"},
     {"CareTeam/ct-ada", "CareTeam/ct-group"}),
    ("CarePlan", "_id=cp-ada&_include=*", {"cp-ada"},
     {"Patient/pat-ada", "CareTeam/ct-ada", "Encounter/enc-ada-1"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:*", {"cp-ada"},
     {"Patient/pat-ada", "CareTeam/ct-ada", "Encounter/enc-ada-1"}),
    ("CareTeam", "_id=ct-ada&_include=CareTeam:participant", {"ct-ada"},
     {"Practitioner/pract-house", "Organization/org-general"}),
    ("CareTeam", "_id=ct-ada&_include=CareTeam:participant:Practitioner", {"ct-ada"},
     {"Practitioner/pract-house"}),
    ("CareTeam", "_id=ct-bjorn&_include=CareTeam:participant", {"ct-bjorn"},
     {"Practitioner/pract-wilson", "Patient/pat-bjorn"}),
    ("CareTeam", "_id=ct-ada,ct-group&_include=CareTeam:participant&_include=CareTeam:subject",
     {"ct-ada", "ct-group"},
     {"Practitioner/pract-house", "Organization/org-general", "Patient/pat-ada",
      "Group/grp-1"}),
    ("Encounter", "_id=enc-ada-1&_include=Encounter:patient", {"enc-ada-1"},
     {"Patient/pat-ada"}),
    ("Encounter", "_id=enc-ada-1&_include=Encounter:participant", {"enc-ada-1"},
     {"Practitioner/pract-house"}),
    ("Encounter", "patient=pat-ada&_include=Encounter:participant"
     "&_include=Encounter:service-provider", {"enc-ada-1", "enc-ada-2"},
     {"Practitioner/pract-house", "Practitioner/pract-wilson", "Organization/org-general",
      "Organization/org-clinic"}),
    ("Encounter", "_id=enc-ada-1&_include=*", {"enc-ada-1"},
     {"Patient/pat-ada", "Practitioner/pract-house", "Location/loc-ward",
      "Organization/org-general"}),
    ("Encounter", "_id=enc-bjorn&_include=Encounter:participant", {"enc-bjorn"}, set()),
    ("Task", "_id=task-1&_include=Task:focus", {"task-1"}, {"CarePlan/cp-ada"}),
    ("Task", "_id=task-2&_include=Task:focus", {"task-2"}, {"Encounter/enc-bjorn"}),
    ("Task", "_id=task-3&_include=Task:focus", {"task-3"}, set()),
    ("Task", "_include=Task:focus&_include=Task:owner", {"task-1", "task-2", "task-3"},
     {"CarePlan/cp-ada", "Encounter/enc-bjorn", "Practitioner/pract-house",
      "Organization/org-general"}),
    ("Task", "_id=task-1,task-2&_include=Task:focus:Encounter", {"task-1", "task-2"},
     {"Encounter/enc-bjorn"}),
    ("Patient", "_id=pat-ada&_revinclude=CarePlan:subject", {"pat-ada"},
     {"CarePlan/cp-ada", "CarePlan/cp-ada-old"}),
    ("Patient", "_id=pat-ada&_revinclude=CarePlan:patient", {"pat-ada"},
     {"CarePlan/cp-ada", "CarePlan/cp-ada-old"}),
    ("Patient", "_id=pat-dee&_revinclude=CarePlan:subject", {"pat-dee"}, set()),
    ("Patient", "_id=pat-ada,pat-bjorn&_revinclude=CarePlan:subject", {"pat-ada", "pat-bjorn"},
     {"CarePlan/cp-ada", "CarePlan/cp-ada-old", "CarePlan/cp-bjorn"}),
    ("Patient", "_id=pat-ada&_revinclude=CarePlan:subject&_revinclude=Encounter:patient",
     {"pat-ada"}, {"CarePlan/cp-ada", "CarePlan/cp-ada-old", "Encounter/enc-ada-1",
                   "Encounter/enc-ada-2"}),
    ("Patient", "_id=pat-bjorn&_revinclude=CareTeam:participant", {"pat-bjorn"},
     {"CareTeam/ct-bjorn"}),
    ("Patient", "_id=pat-ada&_revinclude=Provenance:target", {"pat-ada"}, {"Provenance/prov-1"}),
    ("Patient", "_id=pat-ada&_revinclude=Task:patient", {"pat-ada"},
     {"Task/task-1", "Task/task-3"}),
    ("CarePlan", "_id=cp-ada&_revinclude=Provenance:target", {"cp-ada"}, {"Provenance/prov-1"}),
    ("CarePlan", "_id=cp-ada-old&_revinclude=Provenance:target", {"cp-ada-old"}, set()),
    ("CarePlan", "_id=cp-ada&_revinclude=Task:focus", {"cp-ada"}, {"Task/task-1"}),
    ("CarePlan", "_id=cp-ada&_include=CarePlan:patient&_revinclude=Provenance:target",
     {"cp-ada"}, {"Patient/pat-ada", "Provenance/prov-1"}),
    ("Practitioner", "_id=pract-house&_revinclude=Encounter:participant"
     "&_revinclude=CareTeam:participant", {"pract-house"},
     {"Encounter/enc-ada-1", "CareTeam/ct-ada", "CareTeam/ct-group"}),
    ("Group", "_id=grp-1&_revinclude=CarePlan:subject&_revinclude=CareTeam:subject", {"grp-1"},
     {"CarePlan/cp-group", "CareTeam/ct-group"}),
]


@pytest.mark.parametrize(("resource_type", "query", "matches", "includes"), INCLUDE_CASES,
                         ids=[f"{t}?{q}" for t, q, _, _ in INCLUDE_CASES])
def test_include_and_revinclude(care: TestClient, resource_type: str, query: str,
                                matches: set[str], includes: set[str]) -> None:
    bundle = search(care, resource_type, query)
    assert set(match_ids(bundle)) == matches
    assert bundle["total"] == len(matches)  # included resources are not counted
    extra = included(bundle)
    assert len(extra) == len(set(extra)), f"an included resource repeats: {extra}"
    assert set(extra) == includes
    for entry in entries(bundle, "include"):
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"
    assert all(e["search"]["mode"] in ("match", "include") for e in bundle.get("entry", []))


def test_include_iterate_follows_included_resources(care: TestClient) -> None:
    """R4: ``_include:iterate`` applies the include to included resources as well."""
    bundle = search(care, "CarePlan", [("_id", "cp-ada"), ("_include", "CarePlan:care-team"),
                                       ("_include:iterate", "CareTeam:participant")])
    assert match_ids(bundle) == ["cp-ada"]
    assert set(included(bundle)) == {"CareTeam/ct-ada", "Practitioner/pract-house",
                                     "Organization/org-general"}
    assert outcome_issues(bundle) == []


def test_revinclude_iterate_follows_included_resources(care: TestClient) -> None:
    bundle = search(care, "Patient", [("_id", "pat-ada"), ("_revinclude", "CarePlan:subject"),
                                      ("_revinclude:iterate", "Task:focus")])
    assert set(included(bundle)) == {"CarePlan/cp-ada", "CarePlan/cp-ada-old", "Task/task-1"}


def test_includes_are_per_page(care: TestClient) -> None:
    first = search(care, "CarePlan", "patient=pat-ada&_include=CarePlan:patient"
                                     "&_sort=_id&_count=1")
    assert match_ids(first) == ["cp-ada"]
    assert included(first) == ["Patient/pat-ada"]
    next_url = link(first, "next")
    assert next_url is not None
    second = care.get(next_url).json()
    assert match_ids(second) == ["cp-ada-old"]
    assert included(second) == ["Patient/pat-ada"]


def test_summary_count_ignores_includes(care: TestClient) -> None:
    bundle = search(care, "CarePlan", "_include=CarePlan:patient&_summary=count")
    assert bundle["total"] == 4
    assert bundle.get("entry", []) == []


# -- _sort -----------------------------------------------------------------------------------

SORT_CASES: list[tuple[str, str, list[str]]] = [
    ("Patient", "_sort=_id", ["pat-ada", "pat-bjorn", "pat-cy", "pat-dee", "pat-eve"]),
    ("Patient", "_sort=-_id", ["pat-eve", "pat-dee", "pat-cy", "pat-bjorn", "pat-ada"]),
    ("Patient", "family=okafor&_sort=-_id", ["pat-eve", "pat-ada"]),
    # string, accent-insensitive: muller, o'brien, okafor, okafor-smith, smith,jones
    ("Patient", "_sort=family", ["pat-bjorn", "pat-dee", "pat-ada", "pat-eve", "pat-cy"]),
    ("Patient", "_sort=-family", ["pat-cy", "pat-eve", "pat-ada", "pat-dee", "pat-bjorn"]),
    # token, then string; pat-dee has no gender
    ("Patient", "_sort=gender,family", ["pat-ada", "pat-eve", "pat-bjorn", "pat-cy"]),
    ("Patient", "_sort=-gender,family", ["pat-cy", "pat-bjorn", "pat-ada", "pat-eve"]),
    ("Patient", "_sort=gender,-family", ["pat-eve", "pat-ada", "pat-bjorn", "pat-cy"]),
    # date; pat-dee has no birthDate. pat-eve (1948-03) and pat-ada (1948-03-02) overlap, so
    # their relative order is the server's choice.
    ("Patient", "_sort=birthdate", ["pat-ada", "pat-bjorn", "pat-cy"]),
    ("Patient", "_sort=birthdate", ["pat-eve", "pat-bjorn", "pat-cy"]),
    ("Patient", "_sort=-birthdate", ["pat-cy", "pat-bjorn", "pat-ada"]),
    ("Patient", "_sort=-birthdate", ["pat-cy", "pat-bjorn", "pat-eve"]),
    ("Patient", "birthdate=ge1950&_sort=-birthdate", ["pat-cy", "pat-bjorn"]),
    ("CarePlan", "_sort=date", ["cp-group", "cp-ada-old", "cp-ada", "cp-bjorn"]),
    ("CarePlan", "_sort=-date", ["cp-bjorn", "cp-ada", "cp-ada-old", "cp-group"]),
    ("CarePlan", "_sort=status,-_id", ["cp-group", "cp-ada", "cp-ada-old", "cp-bjorn"]),
    ("CarePlan", "_sort=-status,_id", ["cp-bjorn", "cp-ada-old", "cp-ada", "cp-group"]),
    ("CarePlan", "_sort=intent,date", ["cp-ada-old", "cp-group", "cp-ada", "cp-bjorn"]),
    ("Encounter", "_sort=date", ["enc-bjorn", "enc-ada-1", "enc-ada-2"]),
    ("Encounter", "_sort=-date", ["enc-ada-2", "enc-ada-1", "enc-bjorn"]),
    ("Encounter", "_sort=status", ["enc-ada-1", "enc-ada-2", "enc-bjorn"]),
    ("Task", "_sort=authored-on", ["task-1", "task-3", "task-2"]),
    ("Task", "_sort=-authored-on", ["task-2", "task-3", "task-1"]),
    ("Task", "_sort=status", ["task-2", "task-3", "task-1"]),
    ("CareTeam", "_sort=-status", ["ct-group", "ct-bjorn", "ct-ada"]),
]


@pytest.mark.parametrize(("resource_type", "query", "order"), SORT_CASES,
                         ids=[f"{t}?{q}|{o[0]}" for t, q, o in SORT_CASES])
def test_sort(care: TestClient, resource_type: str, query: str, order: list[str]) -> None:
    """Resources without a value for the sort key may come first or last (the spec does not
    say), so they are only checked to be present."""
    bundle = search(care, resource_type, query)
    ids = match_ids(bundle)
    assert [i for i in ids if i in order] == order
    assert len(ids) == bundle["total"] == len(set(ids))


def test_sort_places_resources_without_the_key_together(care: TestClient) -> None:
    ids = match_ids(search(care, "Patient", "_sort=birthdate"))
    assert ids.index("pat-dee") in (0, 4)
    ids = match_ids(search(care, "Patient", "_sort=-birthdate"))
    assert ids.index("pat-dee") in (0, 4)
    assert ids[ids.index("pat-cy") + 1] == "pat-bjorn"


def test_sort_is_kept_in_the_self_link(care: TestClient) -> None:
    bundle = search(care, "Patient", "_sort=-family,_id")
    self_link = link(bundle, "self") or ""
    assert self_link.startswith(f"{BASE}/Patient?")
    assert parse_qsl(urlsplit(self_link).query) == [("_sort", "-family,_id")]


# -- _elements and _summary ------------------------------------------------------------------

def test_elements_applies_to_every_match(care: TestClient) -> None:
    bundle = search(care, "Patient", "family=okafor&_elements=gender,birthDate")
    assert set(match_ids(bundle)) == {"pat-ada", "pat-eve"}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert set(resource) <= {"resourceType", "id", "meta", "gender", "birthDate",
                                 "implicitRules", "language"}
        assert resource["gender"] == "female"
        assert any(t["code"] == SUBSETTED for t in resource["meta"]["tag"])


def test_elements_keeps_mandatory_complex_elements(care: TestClient) -> None:
    """R4 search.html#elements: servers SHOULD return mandatory elements (min 1), e.g.
    Encounter.class and CarePlan.subject, whether or not they were asked for."""
    encounter_ = search(care, "Encounter", "_id=enc-ada-1&_elements=status")
    resource = encounter_["entry"][0]["resource"]
    assert resource["status"] == "finished"
    assert resource["class"]["code"] == "AMB"
    assert "period" not in resource and "subject" not in resource
    plan = search(care, "CarePlan", "_id=cp-ada&_elements=title")["entry"][0]["resource"]
    assert {"title", "status", "intent", "subject"} <= set(plan)
    assert "period" not in plan


def test_summary_count_with_criteria(care: TestClient) -> None:
    assert search(care, "Patient", "gender=female&_summary=count")["total"] == 2
    assert search(care, "Encounter", "patient=pat-ada&_summary=count")["total"] == 2


# -- unknown parameters, strict handling -----------------------------------------------------

def test_unknown_parameter_is_ignored_and_reported(care: TestClient) -> None:
    bundle = search(care, "Patient", "family=okafor&colour=blue&_sort=_id")
    assert match_ids(bundle) == ["pat-ada", "pat-eve"]
    assert bundle["total"] == 2
    [outcome] = entries(bundle, "outcome")
    assert outcome["resource"]["resourceType"] == "OperationOutcome"
    issues = outcome["resource"]["issue"]
    assert all(i["severity"] in ("warning", "information") for i in issues)
    assert any("colour" in i.get("diagnostics", "") or "colour" in i.get("expression", [])
               for i in issues)
    assert "colour" not in (link(bundle, "self") or "")  # self shows what was used


def test_parameter_of_another_type_is_unknown(care: TestClient) -> None:
    bundle = search(care, "Patient", "status=active")  # CarePlan has status, Patient not
    assert len(match_ids(bundle)) == 5
    assert outcome_issues(bundle)


def test_unknown_parameter_with_strict_handling_is_refused(care: TestClient) -> None:
    outcome = refused(care, "Patient", "family=okafor&colour=blue",
                      headers={"Prefer": "handling=strict"})
    assert any("colour" in e for i in outcome["issue"] for e in i.get("expression", []))


def test_strict_handling_with_known_parameters_searches(care: TestClient) -> None:
    bundle = search(care, "Patient", "family=okafor", headers={"Prefer": "handling=strict"})
    assert set(match_ids(bundle)) == {"pat-ada", "pat-eve"}
    assert entries(bundle, "outcome") == []


def test_lenient_handling_ignores_unknown_parameters(care: TestClient) -> None:
    bundle = search(care, "Patient", "family=okafor&colour=blue",
                    headers={"Prefer": "handling=lenient"})
    assert set(match_ids(bundle)) == {"pat-ada", "pat-eve"}
    assert outcome_issues(bundle)


# -- invalid values --------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, str]] = [
    ("Patient", "birthdate=1948-13-01", "birthdate"),
    ("Patient", "birthdate=1948-02-30", "birthdate"),
    ("Patient", "birthdate=yesterday", "birthdate"),
    ("Patient", "birthdate=xx1948", "birthdate"),
    ("Patient", "birthdate=gt", "birthdate"),
    ("Patient", "birthdate=48-03-02", "birthdate"),
    ("Patient", "birthdate=1948-03-02T10:00:00Q", "birthdate"),
    ("Patient", "birthdate=ge1948&birthdate=1948-3-2", "birthdate"),
    ("Patient", "family=okafor&birthdate=1948,notadate", "birthdate"),
    ("Encounter", "date=2023-03-10T25:00:00Z", "date"),
    ("Task", "authored-on=2023-04-01T08:30:00+0100", "authored-on"),
    ("Patient", "_lastUpdated=soon", "_lastUpdated"),
    ("Patient", "family:below=oka", "family"),
    ("Patient", "family:not=okafor", "family"),
    ("Patient", "gender:exact=female", "gender"),
    ("Patient", "gender:contains=fem", "gender"),
    ("CarePlan", "date:exact=2023", "date"),
    ("CarePlan", "subject:exact=pat-ada", "subject"),
    ("CarePlan", "subject:Nonsense=pat-ada", "subject"),
    ("CarePlan", "subject:missing=maybe", "subject"),
    ("CarePlan", "subject=Patient/", "subject"),
    ("CarePlan", "subject=not a reference/x/y", "subject"),
    ("CarePlan", "status.name=x", "status"),
    ("Patient", "_count=abc", "_count"),
    ("Patient", "_count=-1", "_count"),
    ("Patient", "_sort=colour", "_sort"),
    ("Patient", "_summary=maybe", "_summary"),
    ("CarePlan", "_include=CarePlan:status", "_include"),
    ("CarePlan", "_include=Nonsense:subject", "_include"),
    ("CarePlan", "_include=CarePlan", "_include"),
    ("CarePlan", "_include=CarePlan:subject:Nonsense", "_include"),
    ("Patient", "_revinclude=CarePlan:colour", "_revinclude"),
]


@pytest.mark.parametrize(("resource_type", "query", "name"), ERROR_CASES,
                         ids=[f"{t}?{q}" for t, q, _ in ERROR_CASES])
def test_invalid_value_is_400_naming_the_parameter(care: TestClient, resource_type: str,
                                                   query: str, name: str) -> None:
    outcome = refused(care, resource_type, query)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert any(e == name or e.startswith((f"{name}:", f"{name}.")) for e in expressions), \
        outcome


@pytest.mark.parametrize("query", ["identifier=", "family=", "birthdate=", "patient="])
def test_empty_value_is_ignored_or_refused_naming_the_parameter(care: TestClient,
                                                                query: str) -> None:
    resource_type = "CarePlan" if query.startswith("patient") else "Patient"
    response = care.get(f"/fhir/{resource_type}", params=pairs(query))
    body = response.json()
    name = query.rstrip("=")
    if response.status_code == 200:
        assert body["type"] == "searchset"
    else:
        assert response.status_code == 400, body
        expressions = [e for issue in body["issue"] for e in issue.get("expression", [])]
        assert name in expressions, body


def test_invalid_value_is_refused_even_when_lenient(care: TestClient) -> None:
    refused(care, "Patient", "birthdate=notadate", headers={"Prefer": "handling=lenient"})


def test_post_search_refuses_invalid_values_too(care: TestClient) -> None:
    response = care.post("/fhir/Patient/_search", data={"birthdate": "notadate"})
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["birthdate"]


def test_tampered_paging_link_is_400(care: TestClient) -> None:
    """A next link whose paging state was corrupted is refused, not a server error."""
    bundle = search(care, "Patient", "_count=2&_sort=family")
    next_url = link(bundle, "next")
    assert next_url is not None
    query = parse_qsl(urlsplit(next_url).query)
    paging = {k for k, _ in query} - {"_count", "_sort"}
    assert paging, next_url
    tampered = [(k, "bm90IGEgY3Vyc29y" if k in paging else val) for k, val in query]
    response = care.get("/fhir/Patient", params=tampered)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_search_on_unknown_type_is_404(care: TestClient) -> None:
    response = care.get("/fhir/Nonsense", params=pairs("name=x"))
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
