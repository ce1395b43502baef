"""Real Synthea patient bundles load whole as transactions (R4 http.html#transaction).

``tests/data/synthea/afhir.json`` and ``cfhir.json`` are the Synthea transaction Bundles from
the test resources of the ``fhiry`` 5.2.2 source distribution (``tests/resources/``; MIT
licence; synthetic patients). Every entry is a ``POST`` whose ``fullUrl`` is a
``urn:uuid:`` that the other entries reference, so after the load every such reference must
point at the ``Type/id`` the gateway assigned.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

SYNTHEA = Path(__file__).parents[1] / "data" / "synthea"
BUNDLES = ["afhir.json", "cfhir.json"]
FHIR_JSON = "application/fhir+json"
CARE_TYPES = ("CarePlan", "CareTeam", "Encounter")


@cache
def raw_bundle(name: str) -> bytes:
    return (SYNTHEA / name).read_bytes()


def transaction(name: str) -> dict[str, Any]:
    """The bundle as a transaction; a ``collection`` would be converted (PUT for entries with
    an id, POST with a urn:uuid fullUrl otherwise). The checked-in ones are transactions."""
    bundle = json.loads(raw_bundle(name))
    if bundle["type"] == "collection":
        bundle["type"] = "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            resource_type = resource["resourceType"]
            if resource.get("id"):
                entry["request"] = {"method": "PUT", "url": f"{resource_type}/{resource['id']}"}
            else:
                entry["request"] = {"method": "POST", "url": resource_type}
            entry.setdefault("fullUrl", f"urn:uuid:{uuid.uuid4()}")
    assert bundle["type"] == "transaction"
    return bundle


def references(node: Any) -> Iterator[str]:
    """Every ``reference`` string of the Reference datatypes in a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for key, value in node.items():
            if key != "reference":
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def rewritten(node: Any, targets: dict[str, str]) -> Any:
    """``node`` with each reference to a fullUrl replaced by what it resolved to."""
    if isinstance(node, dict):
        return {key: (targets.get(value, value) if key == "reference" and isinstance(value, str)
                      else rewritten(value, targets))
                for key, value in node.items()}
    if isinstance(node, list):
        return [rewritten(item, targets) for item in node]
    return node


class Loaded:
    """A bundle as it was posted and what the gateway made of each entry."""

    def __init__(self, bundle: dict[str, Any], answer: dict[str, Any]) -> None:
        self.bundle = bundle
        self.entries = bundle["entry"]
        self.answers = answer["entry"]
        # fullUrl -> "Type/id" the server assigned, read from each response location
        self.targets = {entry["fullUrl"]: relative(response["response"]["location"])
                        for entry, response in zip(self.entries, self.answers, strict=True)}
        patients = [e for e in self.entries if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1
        self.patient = self.targets[patients[0]["fullUrl"]]  # "Patient/<id>"

    def ids(self, resource_type: str) -> set[str]:
        return {self.targets[e["fullUrl"]].split("/")[1] for e in self.entries
                if e["resource"]["resourceType"] == resource_type}

    def types(self) -> Counter[str]:
        return Counter(e["resource"]["resourceType"] for e in self.entries)


def relative(location: str) -> str:
    """``Type/id`` from a response location ``[base/]Type/id/_history/v``."""
    parts = location.split("/")
    assert parts[-2] == "_history", location
    return f"{parts[-4]}/{parts[-3]}"


def post_transaction(client: TestClient, name: str) -> Loaded:
    bundle = transaction(name)
    response = client.post("/fhir", content=json.dumps(bundle),
                           headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith(FHIR_JSON)
    answer = response.json()
    assert answer["resourceType"] == "Bundle"
    assert answer["type"] == "transaction-response"
    assert len(answer["entry"]) == len(bundle["entry"])
    for entry in answer["entry"]:
        assert entry["response"]["status"].split()[0] in ("201", "200"), entry
        assert entry["response"]["location"]
    return Loaded(bundle, answer)


def search(client: TestClient, query: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert not [link for link in bundle.get("link", []) if link["relation"] == "next"], (
        f"{query} did not fit on one page")
    return bundle


def by_mode(bundle: dict[str, Any], mode: str) -> list[str]:
    return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}"
                  for e in bundle.get("entry", []) if e["search"]["mode"] == mode)


def check_found_by_patient(client: TestClient, loaded: Loaded) -> None:
    """Each care resource of the bundle is found by its patient, and nothing else is."""
    for resource_type in CARE_TYPES:
        expected = loaded.ids(resource_type)
        assert expected, f"the bundle has no {resource_type}"
        found = search(client, f"{resource_type}?patient={loaded.patient}&_count=1000")
        assert found["total"] == len(expected) == loaded.types()[resource_type]
        assert {e["resource"]["id"] for e in found["entry"]} == expected
        for entry in found["entry"]:
            resource = entry["resource"]
            assert resource["subject"]["reference"] == loaded.patient
            read = client.get(f"/fhir/{resource_type}/{resource['id']}")
            assert read.status_code == 200
            assert read.json() == resource
    observations = search(client, f"Observation?subject={loaded.patient}&_summary=count")
    assert observations["total"] == loaded.types()["Observation"]


def check_stored_whole(client: TestClient, loaded: Loaded) -> None:
    """Every resource is stored as sent, except that urn:uuid references now read Type/id;
    a POST gets a new id (a create ignores the id in the body, http.html#create)."""
    assert len(set(loaded.targets.values())) == len(loaded.entries)
    for entry in loaded.entries:
        request, target = entry["request"], loaded.targets[entry["fullUrl"]]
        if request["method"] == "POST":
            assert target.split("/")[1] != entry["resource"].get("id"), target
        else:
            assert target == request["url"]
    stored: dict[str, dict[str, Any]] = {}
    for resource_type in loaded.types():
        found = search(client, f"{resource_type}?_count=1000")
        stored.update({f"{resource_type}/{e['resource']['id']}": e["resource"]
                       for e in found["entry"]})
    for entry in loaded.entries:
        target = loaded.targets[entry["fullUrl"]]
        resource = stored[target]
        assert not [r for r in references(resource) if r.startswith("urn:")], target
        assert Counter(references(resource)) == Counter(
            loaded.targets.get(r, r) for r in references(entry["resource"])), target
        expected = rewritten(entry["resource"], loaded.targets)
        kept = {k: v for k, v in resource.items() if k not in ("id", "meta")}
        assert kept == {k: v for k, v in expected.items() if k not in ("id", "meta")}, target
        assert resource["meta"]["versionId"] == "1"


def check_includes(client: TestClient, loaded: Loaded) -> None:
    # _include: the encounters with their patient
    encounters = search(client, f"Encounter?patient={loaded.patient}"
                                "&_include=Encounter:patient&_count=1000")
    assert by_mode(encounters, "match") == sorted(
        f"Encounter/{i}" for i in loaded.ids("Encounter"))
    assert by_mode(encounters, "include") == [loaded.patient]

    # _include of what the care plans point at: their care teams and goals
    plans = [e["resource"] for e in loaded.entries
             if e["resource"]["resourceType"] == "CarePlan"]
    pointed_at = {loaded.targets[ref["reference"]] for plan in plans
                  for ref in plan.get("careTeam", []) + plan.get("goal", [])}
    assert pointed_at
    with_teams = search(client, f"CarePlan?patient={loaded.patient}&_include=CarePlan:care-team"
                                "&_include=CarePlan:goal&_count=1000")
    assert len(by_mode(with_teams, "match")) == len(plans)
    assert by_mode(with_teams, "include") == sorted(pointed_at)

    # _revinclude: the patient with everything of the care types that points at them
    patient_id = loaded.patient.split("/")[1]
    everything = search(client, f"Patient?_id={patient_id}&_revinclude=CarePlan:patient"
                                "&_revinclude=CareTeam:patient&_revinclude=Encounter:patient")
    assert by_mode(everything, "match") == [loaded.patient]
    assert by_mode(everything, "include") == sorted(
        f"{t}/{i}" for t in CARE_TYPES for i in loaded.ids(t))


def check_totals(client: TestClient, *loaded: Loaded) -> None:
    totals: Counter[str] = Counter()
    for one in loaded:
        totals += one.types()
    for resource_type, count in totals.items():
        found = search(client, f"{resource_type}?_summary=count")
        assert found["total"] == count, resource_type


def test_synthea_bundles_are_transactions_of_posts() -> None:
    for name in BUNDLES:
        bundle = json.loads(raw_bundle(name))
        assert bundle["type"] == "transaction"
        assert {e["request"]["method"] for e in bundle["entry"]} == {"POST"}
        assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
        assert sum(r.startswith("urn:uuid:") for r in references(bundle)) > 900


def test_synthea_bundles_load_whole_into_one_database(client: TestClient) -> None:
    """Each bundle is loaded once (they take seconds): the first into an empty database, the
    second beside it, where it must not collide with the first."""
    first = post_transaction(client, BUNDLES[0])
    check_totals(client, first)
    check_stored_whole(client, first)
    check_found_by_patient(client, first)
    check_includes(client, first)

    second = post_transaction(client, BUNDLES[1])
    assert first.patient != second.patient
    assert not set(first.targets.values()) & set(second.targets.values())
    check_totals(client, first, second)
    check_stored_whole(client, second)
    for loaded in (first, second):
        check_found_by_patient(client, loaded)
        check_includes(client, loaded)
        patient = client.get(f"/fhir/{loaded.patient}")
        assert patient.status_code == 200
        assert patient.json()["meta"]["versionId"] == "1"
    patients = search(client, "Patient")
    assert by_mode(patients, "match") == sorted([first.patient, second.patient])
