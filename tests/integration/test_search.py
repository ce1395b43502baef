"""Search through HTTP (R4 search.html): the searchset Bundle, result parameters, writes.

This module also holds what the other ``test_search_*`` modules share: resource factories,
search helpers, and ``CARE_DATA``, a small care-coordination data set served by a private
gateway per module (``private_gateway``) so that read-only tables of queries do not pay for a
fresh database per case.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from gateway.api.app import create_app
from gateway.config import Settings
from tests.conftest import BACKEND, POSTGRES_ADMIN_URL

BASE = "http://testserver/fhir"
SUBSETTED = "SUBSETTED"
Pairs = list[tuple[str, str]]

MRN = "http://hospital.example.org/mrn"
NPI = "http://hl7.org/fhir/sid/us-npi"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
ENCOUNTER_IDS = "http://hospital.example.org/encounter"
CAREPLAN_IDS = "http://hospital.example.org/careplan"


# -- resource factories ----------------------------------------------------------------------

def ref(target: str) -> dict[str, str]:
    return {"reference": target}


def coding(system: str | None, code: str, display: str | None = None) -> dict[str, str]:
    out = {"code": code}
    if system is not None:
        out["system"] = system
    if display is not None:
        out["display"] = display
    return out


def concept(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def patient(family: str = "Okafor", given: Iterable[str] = ("Ada",), **extra: Any
            ) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": list(given)}],
            **extra}


def practitioner(family: str, given: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "name": [{"family": family, "given": [given]}],
            **extra}


def organization(name: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Organization", "name": name, **extra}


def care_team(subject: str, members: Iterable[str] = (), *, status: str = "active",
              **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "CareTeam", "status": status,
                            "subject": ref(subject), **extra}
    if members:
        body["participant"] = [{"member": ref(m)} for m in members]
    return body


def care_plan(subject: str, *, status: str = "active", intent: str = "plan",
              **extra: Any) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "status": status, "intent": intent,
            "subject": ref(subject), **extra}


def encounter(subject: str, *, status: str = "finished", klass: str = "AMB",
              **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": status, "class": coding(ACT, klass),
            "subject": ref(subject), **extra}


def task(*, status: str = "requested", intent: str = "order", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "status": status, "intent": intent, **extra}


def provenance(targets: Iterable[str], agent: str,
               recorded: str = "2023-01-01T10:00:00Z") -> dict[str, Any]:
    return {"resourceType": "Provenance", "target": [ref(t) for t in targets],
            "recorded": recorded, "agent": [{"who": ref(agent)}]}


# -- HTTP helpers ----------------------------------------------------------------------------

def create(client: TestClient, resource: dict[str, Any]) -> str:
    """POST a resource; its server-assigned id."""
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def put(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def delete(client: TestClient, reference: str) -> None:
    response = client.delete(f"/fhir/{reference}")
    assert response.status_code in (200, 204), response.text


def transaction(client: TestClient, resources: list[dict[str, Any]]) -> list[str]:
    """Create resources in one transaction (PUT when they carry an id); their ids."""
    entries = []
    for resource in resources:
        if "id" in resource:
            request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
            full_url = f"{BASE}/{resource['resourceType']}/{resource['id']}"
        else:
            request = {"method": "POST", "url": resource["resourceType"]}
            full_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": full_url, "resource": resource, "request": request})
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": entries})
    assert response.status_code == 200, response.text
    return [e["response"]["location"].split("/")[-3] for e in response.json()["entry"]]


def pairs(query: str) -> Pairs:
    """``a=1&b=2`` as (name, value) pairs, values taken literally (not URL-decoded), so that
    tables can show ``|``, ``,``, ``\\`` and ``+`` as a client means them."""
    if not query:
        return []
    out = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        out.append((name, value))
    return out


def search(client: TestClient, resource_type: str, params: Pairs | str = (),
           headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET [base]/[type]?params; the searchset Bundle (asserting 200 and its type)."""
    if isinstance(params, str):
        params = pairs(params)
    response = client.get(f"/fhir/{resource_type}", params=list(params), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return dict(bundle)


def refused(client: TestClient, resource_type: str, params: Pairs | str,
            headers: dict[str, str] | None = None, status: int = 400) -> dict[str, Any]:
    """The OperationOutcome of a search that must fail."""
    if isinstance(params, str):
        params = pairs(params)
    response = client.get(f"/fhir/{resource_type}", params=list(params), headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert any(i["severity"] in ("error", "fatal") for i in body["issue"]), body
    return dict(body)


def entries(bundle: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def match_ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in entries(bundle, "match")]


def included(bundle: dict[str, Any]) -> list[str]:
    """``Type/id`` of the entries with search.mode include."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in entries(bundle, "include")]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            return str(item["url"])
    return None


def found(client: TestClient, resource_type: str, query: str | Pairs) -> set[str]:
    """Ids matching a query, checking that none repeats and that total agrees."""
    bundle = search(client, resource_type, query)
    ids = match_ids(bundle)
    assert len(ids) == len(set(ids)), f"duplicate matches: {ids}"
    assert bundle.get("total", len(ids)) == len(ids), bundle.get("total")
    assert link(bundle, "next") is None, "the data set fits in one page"
    return set(ids)


def follow(client: TestClient, url: str) -> dict[str, Any]:
    assert url.startswith(BASE + "/"), url
    response = client.get(url)
    assert response.status_code == 200, response.text
    return dict(response.json())


def all_pages(client: TestClient, bundle: dict[str, Any], limit: int = 100) -> list[str]:
    """Match ids of this page and every page after it, following ``next``."""
    ids = match_ids(bundle)
    for _ in range(limit):
        url = link(bundle, "next")
        if url is None:
            return ids
        bundle = follow(client, url)
        ids += match_ids(bundle)
    raise AssertionError("too many pages; the next links loop")


def outcome_issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [issue for e in entries(bundle, "outcome") for issue in e["resource"]["issue"]]


# -- a private gateway with a fixed data set -------------------------------------------------

@contextmanager
def private_gateway(directory: Path) -> Iterator[TestClient]:
    """A gateway on a database of its own (SQLite file, or a throwaway PostgreSQL database),
    so module-scoped data survive other tests emptying the shared test database."""
    admin = None
    name = ""
    if BACKEND == "postgresql":
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"gateway_search_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(
            hide_password=False)
    else:
        url = f"sqlite:///{directory / 'gateway.db'}"
    # No worker: the transition workflows would add follow-up Tasks to the fixed data.
    app = create_app(Settings(database_url=url, base_url=None, delivery_in_process=False))
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield client
    finally:
        app.state.database.dispose()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n"), {"n": name})
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()


def _care_data() -> list[dict[str, Any]]:
    """Patients, practitioners, organizations, care teams, care plans, encounters, tasks.

    Ids are fixed so that tables can name expected results. ``pat-gone`` is deleted and
    ``cp-ada-old`` rewritten afterwards (see ``seed_care_data``).
    """
    return [
        {"resourceType": "Patient", "id": "pat-ada", "active": True,
         "identifier": [{"use": "usual", "system": MRN, "value": "MRN-1001"}],
         "name": [{"use": "official", "family": "Okafor", "given": ["Ada", "Ngozi"]}],
         "telecom": [{"system": "phone", "value": "+1-555-0101", "use": "home"},
                     {"system": "email", "value": "ada@example.org"}],
         "gender": "female", "birthDate": "1948-03-02"},
        {"resourceType": "Patient", "id": "pat-bjorn", "active": False,
         "identifier": [{"system": MRN, "value": "MRN-1002"}, {"value": "MRN-1001"}],
         "name": [{"family": "Müller", "given": ["Björn"]}],
         "telecom": [{"system": "phone", "value": "+1-555-0202"}],
         "gender": "male", "birthDate": "1960-07-15"},
        {"resourceType": "Patient", "id": "pat-cy",
         "identifier": [{"system": "urn:example:ids", "value": "a|b"}],
         "name": [{"family": "Smith,Jones", "given": ["Cy"], "prefix": ["Dr."]}],
         "gender": "other", "birthDate": "1990"},
        {"resourceType": "Patient", "id": "pat-dee",
         "name": [{"text": "Dee O'Brien", "family": "O'Brien", "given": ["Dee"]}]},
        {"resourceType": "Patient", "id": "pat-eve",
         "name": [{"family": "Okafor-Smith", "given": ["Eve"]}],
         "gender": "female", "birthDate": "1948-03"},
        {"resourceType": "Patient", "id": "pat-gone", "active": True,
         "identifier": [{"system": MRN, "value": "MRN-1001"}],
         "name": [{"family": "Okafor", "given": ["Ada"]}],
         "telecom": [{"system": "phone", "value": "+1-555-0101"}],
         "gender": "female", "birthDate": "1948-03-02"},
        {"resourceType": "Practitioner", "id": "pract-house",
         "identifier": [{"system": NPI, "value": "1111111111"}],
         "name": [{"family": "House", "given": ["Gregory"], "prefix": ["Dr."]}]},
        {"resourceType": "Practitioner", "id": "pract-wilson",
         "identifier": [{"system": NPI, "value": "2222222222"}],
         "name": [{"family": "Wilson", "given": ["James"]}]},
        {"resourceType": "Organization", "id": "org-general", "name": "General Hospital",
         "identifier": [{"system": "urn:example:org", "value": "GH"}]},
        {"resourceType": "Organization", "id": "org-clinic", "name": "Riverside Clinic"},
        {"resourceType": "Location", "id": "loc-ward", "status": "active", "name": "Ward 3"},
        {"resourceType": "Group", "id": "grp-1", "type": "person", "actual": True,
         "name": "Diabetes cohort", "member": [{"entity": ref("Patient/pat-ada")}]},
        care_team("Patient/pat-ada", ["Practitioner/pract-house", "Organization/org-general"],
                  id="ct-ada", name="Ada's diabetes team",
                  category=[concept(LOINC, "LA27976-2", "Encounter-focused care team")],
                  period={"start": "2023-01-01", "end": "2023-12-31"}),
        care_team("Patient/pat-bjorn", ["Practitioner/pract-wilson", "Patient/pat-bjorn"],
                  id="ct-bjorn", status="inactive",
                  category=[concept(LOINC, "LA28865-6", "Longitudinal care team")],
                  period={"start": "2024-05-01"}),
        care_team("Group/grp-1", ["Practitioner/pract-house"], id="ct-group",
                  status="proposed"),
        encounter("Patient/pat-ada", id="enc-ada-1", status="finished", klass="AMB",
                  identifier=[{"system": ENCOUNTER_IDS, "value": "E-1"}],
                  type=[concept(SCT, "185349003", "Encounter for check up")],
                  participant=[{"individual": ref("Practitioner/pract-house")}],
                  period={"start": "2023-03-10T09:00:00+01:00",
                          "end": "2023-03-10T10:30:00+01:00"},
                  reasonCode=[concept(SCT, "44054006", "Diabetes mellitus type 2")],
                  location=[{"location": ref("Location/loc-ward")}],
                  serviceProvider=ref("Organization/org-general")),
        encounter("Patient/pat-ada", id="enc-ada-2", status="in-progress", klass="IMP",
                  participant=[{"individual": ref("Practitioner/pract-wilson")}],
                  period={"start": "2024-02-01T22:00:00Z"},
                  reasonCode=[concept(SCT, "38341003", "Hypertension")],
                  serviceProvider=ref("Organization/org-clinic")),
        encounter("Patient/pat-bjorn", id="enc-bjorn", status="planned", klass="HH",
                  identifier=[{"system": ENCOUNTER_IDS, "value": "E-3"}],
                  type=[concept(SCT, "439740005", "Postoperative follow-up visit")],
                  period={"start": "2022-12-31", "end": "2023-01-02"}),
        care_plan("Patient/pat-ada", id="cp-ada", title="Diabetes management",
                  identifier=[{"system": CAREPLAN_IDS, "value": "CP-1"}],
                  category=[concept(SCT, "734163000", "Care plan")],
                  encounter=ref("Encounter/enc-ada-1"), careTeam=[ref("CareTeam/ct-ada")],
                  period={"start": "2023-01-01", "end": "2023-06-30"},
                  activity=[{"detail": {"status": "scheduled", "description": "Foot exam",
                                        "scheduledPeriod": {"start": "2023-02-01",
                                                            "end": "2023-02-28"}}}]),
        care_plan("Patient/pat-ada", id="cp-ada-old", title="Old plan, rewritten later",
                  identifier=[{"system": CAREPLAN_IDS, "value": "CP-OLD"}],
                  category=[concept(SCT, "734163000", "Care plan")],
                  period={"start": "2019-01-01", "end": "2019-12-31"},
                  careTeam=[ref("CareTeam/ct-ada")]),
        care_plan("Patient/pat-bjorn", id="cp-bjorn", status="draft", intent="proposal",
                  careTeam=[ref("CareTeam/ct-bjorn")], period={"start": "2024-01-01"},
                  activity=[{"detail": {"status": "not-started",
                                        "scheduledString": "every morning"}}]),
        care_plan("Group/grp-1", id="cp-group", careTeam=[ref("CareTeam/ct-group")],
                  period={"end": "2021-12-31"}),
        task(id="task-1", status="requested", intent="order",
             code=concept(TASK_CODE, "fulfill"), focus=ref("CarePlan/cp-ada"),
             **{"for": ref("Patient/pat-ada")}, authoredOn="2023-04-01T08:30:00Z",
             owner=ref("Practitioner/pract-house")),
        task(id="task-2", status="completed", intent="order",
             code=concept(TASK_CODE, "approve"), focus=ref("Encounter/enc-bjorn"),
             **{"for": ref("Patient/pat-bjorn")}, authoredOn="2024-01-15T12:00:00+00:00",
             owner=ref("Organization/org-general")),
        task(id="task-3", status="in-progress", intent="plan",
             **{"for": ref("Patient/pat-ada")}, authoredOn="2023-04-01T23:30:00-05:00"),
        {**provenance(["CarePlan/cp-ada", "Patient/pat-ada"], "Practitioner/pract-house"),
         "id": "prov-1"},
    ]


CP_ADA_OLD_FINAL = care_plan(
    "Patient/pat-ada", id="cp-ada-old", status="completed", intent="order",
    title="Completed plan", identifier=[{"system": CAREPLAN_IDS, "value": "CP-2"}],
    category=[{"coding": [coding(SCT, "736353004", "Inpatient care plan"),
                          coding("http://example.org/cp-category", "inpatient")]}],
    period={"start": "2022-01-01", "end": "2022-12-31"},
    activity=[{"detail": {"status": "completed",
                          "scheduledTiming": {"event": ["2022-05-05T10:00:00Z"]}}}])


def seed_care_data(client: TestClient) -> None:
    """Load the data set: one transaction, then a delete and an update."""
    transaction(client, _care_data())
    delete(client, "Patient/pat-gone")
    put(client, CP_ADA_OLD_FINAL)


@contextmanager
def care_gateway(directory: Path) -> Iterator[TestClient]:
    with private_gateway(directory) as client:
        seed_care_data(client)
        yield client


# -- tests on a fresh gateway per test -------------------------------------------------------

def test_searchset_bundle_shape(client: TestClient) -> None:
    ada = create(client, patient("Okafor", ["Ada"]))
    create(client, patient("Nwosu", ["Bola"]))
    bundle = search(client, "Patient", [("family", "okafor")])
    assert bundle["total"] == 1
    assert bundle["id"]
    assert link(bundle, "self") == f"{BASE}/Patient?family=okafor"
    assert link(bundle, "next") is None and link(bundle, "previous") is None
    [entry] = bundle["entry"]
    assert entry["fullUrl"] == f"{BASE}/Patient/{ada}"
    assert entry["search"]["mode"] == "match"
    assert entry["resource"]["id"] == ada
    assert entry["resource"]["meta"]["versionId"] == "1"
    assert "request" not in entry and "response" not in entry


def test_search_with_no_parameters_returns_every_resource_of_the_type(
        client: TestClient) -> None:
    ids = {create(client, patient(f"Family{i}")) for i in range(3)}
    create(client, practitioner("House", "Gregory"))
    bundle = search(client, "Patient")
    assert set(match_ids(bundle)) == ids
    assert bundle["total"] == 3
    assert link(bundle, "self") == f"{BASE}/Patient"


def test_search_with_no_match_is_an_empty_bundle(client: TestClient) -> None:
    create(client, patient())
    bundle = search(client, "Patient", [("family", "nobody")])
    assert bundle["total"] == 0
    assert bundle.get("entry", []) == []


def test_summary_count_returns_the_total_only(client: TestClient) -> None:
    for family in ("Okafor", "Okafor", "Nwosu"):
        create(client, patient(family))
    bundle = search(client, "Patient", [("family", "okafor"), ("_summary", "count")])
    assert bundle["total"] == 2
    assert "entry" not in bundle or bundle["entry"] == []
    assert link(bundle, "next") is None


def test_count_zero_returns_the_total_only(client: TestClient) -> None:
    for _ in range(3):
        create(client, patient())
    bundle = search(client, "Patient", [("_count", "0")])
    assert bundle["total"] == 3
    assert bundle.get("entry", []) == []


def test_elements_keeps_only_named_and_mandatory_elements(client: TestClient) -> None:
    subject = create(client, patient())
    plan = create(client, care_plan(f"Patient/{subject}", title="Diabetes",
                                    description="Long text", period={"start": "2023-01-01"},
                                    category=[concept(SCT, "734163000")]))
    bundle = search(client, "CarePlan", [("_id", plan), ("_elements", "title,category")])
    resource = bundle["entry"][0]["resource"]
    assert resource["title"] == "Diabetes"
    assert resource["category"][0]["coding"][0]["code"] == "734163000"
    assert resource["id"] == plan
    # mandatory elements of CarePlan (status, intent, subject 1..1) are kept
    assert resource["status"] == "active" and resource["intent"] == "plan"
    assert resource["subject"] == ref(f"Patient/{subject}")
    assert "description" not in resource and "period" not in resource
    tags = resource["meta"].get("tag", [])
    assert any(t.get("code") == SUBSETTED for t in tags), resource["meta"]
    # the stored resource is untouched
    stored = client.get(f"/fhir/CarePlan/{plan}").json()
    assert stored["description"] == "Long text"
    assert not any(t.get("code") == SUBSETTED for t in stored["meta"].get("tag", []))


def test_summary_true_marks_entries_subsetted(client: TestClient) -> None:
    create(client, patient(text={"status": "generated", "div": "<div>Ada</div>"}))
    resource = search(client, "Patient", [("_summary", "true")])["entry"][0]["resource"]
    assert "text" not in resource
    assert resource["name"][0]["family"] == "Okafor"
    assert any(t.get("code") == SUBSETTED for t in resource["meta"]["tag"])


def _last_updated(client: TestClient, reference: str) -> str:
    return str(client.get(f"/fhir/{reference}").json()["meta"]["lastUpdated"])


def test_last_updated_prefixes_and_sort(client: TestClient) -> None:
    first = create(client, patient("First"))
    time.sleep(0.01)
    second = create(client, patient("Second"))
    time.sleep(0.01)
    third = create(client, patient("Third"))
    moment = _last_updated(client, f"Patient/{second}")
    cases = {
        f"eq{moment}": {second}, moment: {second}, f"ne{moment}": {first, third},
        f"gt{moment}": {third}, f"ge{moment}": {second, third},
        f"lt{moment}": {first}, f"le{moment}": {first, second},
        f"sa{moment}": {third}, f"eb{moment}": {first},
    }
    for value, expected in cases.items():
        assert found(client, "Patient", [("_lastUpdated", value)]) == expected, value
    year = moment[:4]
    assert found(client, "Patient", [("_lastUpdated", year)]) == {first, second, third}
    assert found(client, "Patient", [("_lastUpdated", f"lt{year}")]) == set()
    assert found(client, "Patient", [("_lastUpdated", "gt2000-01-01T00:00:00Z"),
                                     ("_lastUpdated", f"le{moment}")]) == {first, second}
    # updating the first one makes it the most recent
    time.sleep(0.01)
    put(client, patient("First", ["Changed"], id=first))
    ascending = match_ids(search(client, "Patient", [("_sort", "_lastUpdated")]))
    assert ascending == [second, third, first]
    descending = match_ids(search(client, "Patient", [("_sort", "-_lastUpdated")]))
    assert descending == [first, third, second]
    assert found(client, "Patient", [("_lastUpdated", f"gt{moment}")]) == {third, first}


def test_id_parameter(client: TestClient) -> None:
    ids = [create(client, patient(f"P{i}")) for i in range(3)]
    assert found(client, "Patient", [("_id", ids[0])]) == {ids[0]}
    assert found(client, "Patient", [("_id", f"{ids[0]},{ids[2]}")]) == {ids[0], ids[2]}
    assert found(client, "Patient", [("_id", "unknown")]) == set()
    assert found(client, "Patient", [("_id", ids[0]), ("_id", ids[1])]) == set()
    # a Patient id does not find a CarePlan
    assert found(client, "CarePlan", [("_id", ids[0])]) == set()


def test_deleted_resources_are_not_found(client: TestClient) -> None:
    keep = create(client, patient("Okafor", ["Ada"], gender="female"))
    gone = create(client, patient("Okafor", ["Ada"], gender="female"))
    plan = create(client, care_plan(f"Patient/{gone}"))
    other_plan = create(client, care_plan(f"Patient/{keep}"))
    delete(client, f"CarePlan/{plan}")
    delete(client, f"Patient/{gone}")
    for query in ("family=okafor", "gender=female", "name=ada", "gender:missing=false",
                  "birthdate:missing=true", f"_id={keep},{gone}", "gender:not=male"):
        assert found(client, "Patient", query) == {keep}, query
    assert found(client, "Patient", "") == {keep}
    assert search(client, "Patient", "_summary=count")["total"] == 1
    assert found(client, "CarePlan", f"subject={gone}") == set()
    assert found(client, "CarePlan", "patient.family=okafor") == {other_plan}
    assert found(client, "CarePlan", "status=active") == {other_plan}
    bundle = search(client, "Patient", "_revinclude=CarePlan:subject")
    assert included(bundle) == [f"CarePlan/{other_plan}"]


def test_updated_resource_is_found_by_its_new_values_only(client: TestClient) -> None:
    first = create(client, patient("Okafor", ["Ada"]))
    second = create(client, patient("Nwosu", ["Bola"]))
    pid = create(client, patient("Okafor", ["Ada"], gender="female", birthDate="1948-03-02",
                                 identifier=[{"system": MRN, "value": "OLD-1"}]))
    plan = create(client, care_plan(f"Patient/{first}", status="draft"))
    put(client, patient("Adeyemi", ["Funmi"], id=pid, gender="male",
                        identifier=[{"system": MRN, "value": "NEW-1"}]))
    put(client, care_plan(f"Patient/{second}", id=plan, status="active"))
    assert found(client, "Patient", "family=okafor") == {first}
    assert found(client, "Patient", "family=adeyemi") == {pid}
    assert found(client, "Patient", "gender=female") == set()
    assert found(client, "Patient", "gender=male") == {pid}
    assert found(client, "Patient", f"identifier={MRN}|OLD-1") == set()
    assert found(client, "Patient", f"identifier={MRN}|NEW-1") == {pid}
    assert found(client, "Patient", "birthdate=1948-03-02") == set()
    assert found(client, "Patient", "birthdate:missing=true") == {first, second, pid}
    assert found(client, "CarePlan", "status=draft") == set()
    assert found(client, "CarePlan", f"patient={first}") == set()
    assert found(client, "CarePlan", f"patient={second}") == {plan}
    assert found(client, "CarePlan", "patient.family=nwosu") == {plan}


def test_post_search_with_form_body_works_like_get(client: TestClient) -> None:
    ada = create(client, patient("Okafor", ["Ada"]))
    create(client, patient("Nwosu", ["Bola"]))
    plan = create(client, care_plan(f"Patient/{ada}", category=[concept(SCT, "734163000")]))
    create(client, care_plan(f"Patient/{ada}", status="draft"))
    form = {"patient": f"Patient/{ada}", "category": f"{SCT}|734163000",
            "_include": "CarePlan:patient"}
    response = client.post("/fhir/CarePlan/_search", data=form)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert match_ids(bundle) == [plan]
    assert included(bundle) == [f"Patient/{ada}"]
    assert bundle == {**search(client, "CarePlan", list(form.items())),
                      "id": bundle["id"], "meta": bundle["meta"]}


def test_post_search_combines_url_and_body_parameters(client: TestClient) -> None:
    ada = create(client, patient("Okafor", ["Ada"], gender="female"))
    create(client, patient("Okafor", ["Obi"], gender="male"))
    response = client.post("/fhir/Patient/_search?gender=female", data={"family": "okafor"},
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert match_ids(response.json()) == [ada]
