"""Real FHIR client libraries against the gateway on a live uvicorn server.

fhirpy (``SyncFHIRClient`` and ``AsyncFHIRClient``) and the SMART ``fhirclient`` (its
``FHIRClient``/``FHIRServer`` and resource models) create, read, update, search, page, delete
and post transactions as they do against any R4 server (http://hl7.org/fhir/R4/http.html).
Every exchange of the ``requests``-based clients is recorded with a response hook, so the
tests also check what each library sends (Accept, Content-Type) and that the gateway's
answers satisfy it.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fhirclient.client import FHIRClient
from fhirclient.models.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.careplan import CarePlan
from fhirclient.models.careteam import CareTeam
from fhirclient.models.coding import Coding
from fhirclient.models.encounter import Encounter
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.conftest import LiveServer

FHIR_JSON = "application/fhir+json"
ENCOUNTER_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class Wire:
    """Every exchange made through ``requests``: the request as sent and the response."""

    def __init__(self) -> None:
        self.exchanges: list[requests.Response] = []

    def hook(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self.exchanges.append(response)

    def clear(self) -> None:
        self.exchanges.clear()

    def calls(self, method: str, path_part: str = "") -> list[requests.Response]:
        return [r for r in self.exchanges
                if r.request.method == method and path_part in (r.request.url or "")]

    def check_negotiation(self, *, accept: str, content_type: str) -> None:
        """Each request carried the library's headers, and each answer satisfies them."""
        assert self.exchanges
        for response in self.exchanges:
            sent = response.request
            where = f"{sent.method} {sent.url} -> {response.status_code}"
            assert sent.headers.get("Accept") == accept, where
            if sent.body:
                assert sent.headers.get("Content-Type") == content_type, where
            if response.content:
                media, _, params = response.headers["Content-Type"].partition(";")
                assert media.strip() == FHIR_JSON, where
                assert params.strip().lower() == "charset=utf-8", where
                assert response.json()["resourceType"], where


def family_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def human(family: str, given: str = "Ada") -> list[dict[str, Any]]:
    return [{"family": family, "given": [given]}]


def care_transaction(family: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Patient + Encounter + CareTeam + CarePlan, linked only through urn:uuid fullUrls.

    The Patient comes last so that the other entries reference an entry further down.
    """
    urn = {name: f"urn:uuid:{uuid.uuid4()}" for name in
           ("Patient", "Encounter", "CareTeam", "CarePlan")}
    subject = {"reference": urn["Patient"]}
    resources = {
        "CarePlan": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                     "title": "Discharge plan", "subject": subject,
                     "encounter": {"reference": urn["Encounter"]},
                     "careTeam": [{"reference": urn["CareTeam"]}]},
        "CareTeam": {"resourceType": "CareTeam", "status": "active", "name": "Home team",
                     "subject": subject, "encounter": {"reference": urn["Encounter"]}},
        "Encounter": {"resourceType": "Encounter", "status": "finished",
                      "class": {"system": ENCOUNTER_CLASS, "code": "IMP"},
                      "subject": subject},
        "Patient": {"resourceType": "Patient", "name": human(family), "gender": "female"},
    }
    entries = [{"fullUrl": urn[name], "resource": resource,
                "request": {"method": "POST", "url": name}}
               for name, resource in resources.items()]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, urn


def location_id(location: str, resource_type: str) -> str:
    """The id in a response location ``[base/]Type/id/_history/v``."""
    parts = location.split("/")
    index = len(parts) - 1 - parts[::-1].index(resource_type)
    assert parts[index + 2:index + 3] in ([], ["_history"]), location
    return parts[index + 1]


# -- fhirpy, sync ------------------------------------------------------------------------------

@pytest.fixture
def fhirpy_wire() -> Wire:
    return Wire()


@pytest.fixture
def fhirpy(live_server: LiveServer, fhirpy_wire: Wire) -> SyncFHIRClient:
    return SyncFHIRClient(live_server.base, requests_config={
        "hooks": {"response": [fhirpy_wire.hook]}, "timeout": 15})


def test_fhirpy_create_read_update_delete(fhirpy: SyncFHIRClient, fhirpy_wire: Wire) -> None:
    family = family_name("Ñúñez")  # non-ASCII survives the round trip both ways
    patient = fhirpy.resource("Patient", name=human(family, "Zoë"), gender="female",
                              birthDate="1948-03-02")
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"
    created = fhirpy_wire.calls("POST")[-1]
    assert created.status_code == 201
    assert created.headers["Location"].startswith(
        f"{fhirpy.url}/Patient/{patient.id}/_history/1")

    read = fhirpy.reference("Patient", patient.id).to_resource()
    assert read["name"][0] == {"family": family, "given": ["Zoë"]}
    assert read == patient
    as_dict = fhirpy.get("Patient", patient.id)
    assert as_dict["birthDate"] == "1948-03-02"

    patient["gender"] = "other"
    patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert fhirpy_wire.calls("PUT")[-1].status_code == 200
    assert fhirpy_wire.calls("PUT")[-1].headers["ETag"] == 'W/"2"'
    assert fhirpy.get("Patient", patient.id)["gender"] == "other"
    patient.refresh()  # a GET with If-None-Match (conditionalRead is not-supported: 200)
    assert patient["meta"]["versionId"] == "2"

    patient.delete()
    assert fhirpy_wire.calls("DELETE")[-1].status_code in (200, 204)
    with pytest.raises(ResourceNotFound):
        fhirpy.get("Patient", patient.id)
    assert fhirpy_wire.exchanges[-1].status_code == 410  # read of a deleted resource: Gone
    fhirpy_wire.check_negotiation(accept=FHIR_JSON, content_type="application/json")


def test_fhirpy_conditional_update_and_delete(fhirpy: SyncFHIRClient,
                                              fhirpy_wire: Wire) -> None:
    system = f"urn:mrn:{uuid.uuid4().hex[:6]}"
    by_mrn = fhirpy.resources("Patient").search(identifier=f"{system}|7")
    body = fhirpy.resource("Patient", identifier=[{"system": system, "value": "7"}],
                           name=human("Conditional"))
    saved, created = by_mrn.update(body)  # PUT Patient?identifier=... (http.html#cond-update)
    assert created is True
    again, created_again = by_mrn.update(
        fhirpy.resource("Patient", identifier=[{"system": system, "value": "7"}],
                        name=human("Conditional", "Bea")))
    assert created_again is False
    assert again.id == saved.id
    assert again["meta"]["versionId"] == "2"
    assert by_mrn.count() == 1
    assert by_mrn.get().id == saved.id

    _, status = by_mrn.delete()  # DELETE Patient?identifier=...
    assert status in (200, 204)
    assert by_mrn.count() == 0
    fhirpy_wire.check_negotiation(accept=FHIR_JSON, content_type="application/json")


def test_fhirpy_search_with_params(fhirpy: SyncFHIRClient, fhirpy_wire: Wire) -> None:
    family = family_name("Søren")
    people = [("Ada", "female", "1948-03-02"), ("Bea", "female", "1961-07-15"),
              ("Cal", "male", "1955-01-30"), ("Dee", "other", "1990-12-01")]
    ids = {}
    for given, gender, born in people:
        patient = fhirpy.resource("Patient", name=human(family, given), gender=gender,
                                  birthDate=born)
        patient.save()
        ids[given] = patient.id
    fhirpy.resource("Patient", name=human("Elsewhere"), gender="female").save()

    by_family = fhirpy.resources("Patient").search(family=family)
    assert by_family.count() == 4
    women = by_family.search(gender="female").sort("birthdate").fetch()
    assert [p.id for p in women] == [ids["Ada"], ids["Bea"]]
    since_1950 = by_family.search(birthdate__ge="1950-01-01").sort("-birthdate").fetch()
    assert [p.id for p in since_1950] == [ids["Dee"], ids["Bea"], ids["Cal"]]
    either = by_family.search(gender="male,other").fetch()  # a comma is OR
    assert {p.id for p in either} == {ids["Cal"], ids["Dee"]}
    assert by_family.sort("birthdate").first().id == ids["Ada"]
    assert by_family.search(given="Cal").get().id == ids["Cal"]
    assert by_family.search(_id=ids["Bea"]).get()["name"][0]["given"] == ["Bea"]
    assert by_family.search(family="nobody-has-this").fetch() == []

    patient = fhirpy.reference("Patient", ids["Ada"]).to_resource()
    for status in ("finished", "in-progress"):
        fhirpy.resource("Encounter", status=status, subject=patient.to_reference(),
                        **{"class": {"system": ENCOUNTER_CLASS, "code": "AMB"}}).save()
    encounters = fhirpy.resources("Encounter").search(subject=patient)  # subject=Patient/<id>
    assert len(encounters.fetch()) == 2
    assert len(encounters.search(status="finished").fetch()) == 1
    bundle = encounters.include("Encounter", "patient").fetch_raw()
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"])
                   for e in bundle["entry"])
    assert modes == [("include", "Patient"), ("match", "Encounter"), ("match", "Encounter")]
    with_encounters = (fhirpy.resources("Patient").search(_id=ids["Ada"])
                       .revinclude("Encounter", "patient").fetch_raw())
    assert sorted(e["resource"]["resourceType"] for e in with_encounters["entry"]) == [
        "Encounter", "Encounter", "Patient"]
    fhirpy_wire.check_negotiation(accept=FHIR_JSON, content_type="application/json")


def test_fhirpy_fetch_all_pages_every_resource_once(fhirpy: SyncFHIRClient,
                                                     fhirpy_wire: Wire) -> None:
    family = family_name("Pager")
    created = []
    for i in range(23):  # birth dates repeat so the sort has ties across page boundaries
        patient = fhirpy.resource("Patient", name=human(family, f"P{i}"),
                                  birthDate=f"19{50 + i % 3}-01-01")
        patient.save()
        created.append(patient.id)
    for _ in range(3):
        fhirpy.resource("Patient", name=human("Noise")).save()

    fhirpy_wire.clear()
    pages = fhirpy.resources("Patient").search(family=family).sort("birthdate").limit(5)
    found = pages.fetch_all()
    ids = [p.id for p in found]
    assert len(ids) == len(set(ids)) == 23
    assert set(ids) == set(created)
    births = [p["birthDate"] for p in found]
    assert births == sorted(births)

    gets = fhirpy_wire.calls("GET", "/Patient")
    assert len(gets) == math.ceil(23 / 5)
    for response in gets:
        bundle = response.json()
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 23
        assert len(bundle["entry"]) <= 5
        for link in bundle["link"]:
            assert link["url"].startswith(f"{fhirpy.url}/Patient?")
    assert "next" not in {link["relation"] for link in gets[-1].json()["link"]}
    fhirpy_wire.check_negotiation(accept=FHIR_JSON, content_type="application/json")


def test_fhirpy_transaction_with_urn_uuid_references(fhirpy: SyncFHIRClient,
                                                      fhirpy_wire: Wire) -> None:
    family = family_name("Tx")
    bundle, _ = care_transaction(family)
    response = fhirpy.execute("/", method="post", data=bundle)  # POST [base]
    assert response["resourceType"] == "Bundle"
    assert response["type"] == "transaction-response"
    assert len(response["entry"]) == 4
    ids = {}
    for request_entry, entry in zip(bundle["entry"], response["entry"], strict=True):
        resource_type = request_entry["request"]["url"]
        assert entry["response"]["status"].startswith("201")
        ids[resource_type] = location_id(entry["response"]["location"], resource_type)

    plan = fhirpy.get("CarePlan", ids["CarePlan"])
    assert plan["subject"]["reference"] == f"Patient/{ids['Patient']}"
    assert plan["encounter"]["reference"] == f"Encounter/{ids['Encounter']}"
    assert plan["careTeam"][0]["reference"] == f"CareTeam/{ids['CareTeam']}"
    team = fhirpy.get("CareTeam", ids["CareTeam"])
    assert team["subject"]["reference"] == f"Patient/{ids['Patient']}"

    patient = fhirpy.resources("Patient").search(family=family).get()
    assert patient.id == ids["Patient"]
    for resource_type in ("CarePlan", "CareTeam", "Encounter"):
        found = fhirpy.resources(resource_type).search(patient=patient.id).fetch()
        assert [r.id for r in found] == [ids[resource_type]]
    plans = (fhirpy.resources("CarePlan").search(patient=patient)
             .include("CarePlan", "care-team").include("CarePlan", "encounter").fetch_raw())
    assert sorted((e["search"]["mode"], e["resource"]["id"]) for e in plans["entry"]) == sorted(
        [("match", ids["CarePlan"]), ("include", ids["CareTeam"]),
         ("include", ids["Encounter"])])
    fhirpy_wire.check_negotiation(accept=FHIR_JSON, content_type="application/json")


# -- fhirpy, async -----------------------------------------------------------------------------

async def _async_scenario(base: str) -> None:
    client = AsyncFHIRClient(base)
    family = family_name("Async")
    patient = client.resource("Patient", name=human(family), gender="female")
    await patient.save()
    assert patient["meta"]["versionId"] == "1"
    read = await client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == family

    patient["gender"] = "unknown"
    await patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert (await client.get("Patient", patient.id))["gender"] == "unknown"

    others = [client.resource("Patient", name=human(family, f"G{i}")) for i in range(6)]
    await asyncio.gather(*(other.save() for other in others))  # concurrent creates
    assert len({other.id for other in others}) == 6
    search = client.resources("Patient").search(family=family)
    assert await search.count() == 7
    everyone = await search.sort("_id").limit(3).fetch_all()  # three pages
    assert sorted(p.id for p in everyone) == sorted([patient.id, *(o.id for o in others)])
    assert (await search.search(gender="unknown").get()).id == patient.id

    bundle, _ = care_transaction(family_name("AsyncTx"))
    response = await client.execute("/", method="post", data=bundle)
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201"] * 4

    await patient.delete()
    with pytest.raises(ResourceNotFound):
        await client.get("Patient", patient.id)


def test_fhirpy_async_client(live_server: LiveServer) -> None:
    asyncio.run(_async_scenario(live_server.base))


# -- fhirclient (SMART on FHIR) ----------------------------------------------------------------

@pytest.fixture
def smart_wire() -> Wire:
    return Wire()


@pytest.fixture
def smart(live_server: LiveServer, smart_wire: Wire) -> Iterator[FHIRClient]:
    client = FHIRClient(settings={"app_id": "gateway-tests", "api_base": live_server.base})
    client.server.session.hooks["response"].append(smart_wire.hook)
    yield client
    client.server.session.close()


def check_smart_negotiation(wire: Wire) -> None:
    wire.check_negotiation(accept=FHIR_JSON, content_type=FHIR_JSON)
    for response in wire.exchanges:
        assert response.request.headers.get("Accept-Charset") == "UTF-8"


def test_fhirclient_reads_the_capability_statement(smart: FHIRClient,
                                                   smart_wire: Wire) -> None:
    assert smart.prepare() is True  # GET metadata, parsed by the strict R4 model
    assert smart.ready
    capability = smart.server.capabilityStatement
    assert isinstance(capability, CapabilityStatement)
    assert capability.fhirVersion == "4.0.1"
    assert capability.kind == "instance"
    assert any("json" in f for f in capability.format)
    rest = capability.rest[0]
    assert rest.mode == "server"
    types = {r.type: r for r in rest.resource}
    for name in ("Patient", "CarePlan", "CareTeam", "Encounter"):
        assert {i.code for i in types[name].interaction} >= {"read", "create", "update",
                                                               "delete", "search-type"}
    assert {i.code for i in rest.interaction} >= {"transaction"}
    assert smart_wire.calls("GET", "/metadata")
    check_smart_negotiation(smart_wire)


def test_fhirclient_create_read_update_delete(smart: FHIRClient, smart_wire: Wire) -> None:
    server = smart.server
    family = family_name("Łukasiewicz")
    patient = Patient()
    patient.name = [HumanName({"family": family, "given": ["Jürgen"]})]
    patient.gender = "male"
    created = patient.create(server)
    assert created["resourceType"] == "Patient"
    assert smart_wire.calls("POST")[-1].status_code == 201
    pid = created["id"]

    read = Patient.read(pid, server)
    assert read.id == pid
    assert read.name[0].family == family
    assert read.name[0].given == ["Jürgen"]
    assert read.meta.versionId == "1"

    read.gender = "other"
    updated = read.update()  # PUT Patient/<id> on the server it was read from
    assert updated["meta"]["versionId"] == "2"
    assert Patient.read(pid, server).gender == "other"

    outcome = read.delete()
    assert outcome is None or outcome["resourceType"] == "OperationOutcome"
    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(pid, server)
    assert gone.value.response.status_code == 410
    with pytest.raises(FHIRNotFoundException):
        Patient.read("never-was", server)
    check_smart_negotiation(smart_wire)


def test_fhirclient_search_and_pages(smart: FHIRClient, smart_wire: Wire) -> None:
    server = smart.server
    family = family_name("Ærø")
    created = []
    for i in range(12):
        patient = Patient({"name": [{"family": family, "given": [f"G{i}"]}],
                           "gender": ("female", "male", "other")[i % 3]})
        created.append(patient.create(server)["id"])

    search = Patient.where(struct={"family": family, "_count": "5"})
    smart_wire.clear()
    bundles = list(search.perform_iter(server))
    assert len(bundles) == 3
    assert all(isinstance(b, Bundle) and b.type == "searchset" for b in bundles)
    found = [r.id for b in bundles for r in (e.resource for e in b.entry or [])]
    assert sorted(found) == sorted(created)

    # modifiers and OR lists in fhirclient's query structure
    women = list(Patient.where(struct={"family": family, "gender": "female"})
                 .perform_resources_iter(server))
    assert len(women) == 4
    either = list(Patient.where(struct={"family": {"$exact": family},
                                        "gender": {"$or": ["male", "other"]}})
                  .perform_resources_iter(server))
    assert len(either) == 8
    check_smart_negotiation(smart_wire)


def test_fhirclient_transaction_bundle_with_models(smart: FHIRClient, smart_wire: Wire) -> None:
    server = smart.server
    family = family_name("SmartTx")
    urn = {name: f"urn:uuid:{uuid.uuid4()}" for name in
           ("Patient", "Encounter", "CareTeam", "CarePlan")}

    def ref(name: str) -> FHIRReference:
        return FHIRReference({"reference": urn[name]})

    patient = Patient()
    patient.name = [HumanName({"family": family, "given": ["Ada"]})]
    encounter = Encounter()
    encounter.status = "finished"
    encounter.class_fhir = Coding({"system": ENCOUNTER_CLASS, "code": "IMP"})
    encounter.subject = ref("Patient")
    team = CareTeam()
    team.status = "active"
    team.subject = ref("Patient")
    team.encounter = ref("Encounter")
    plan = CarePlan()
    plan.status = "active"
    plan.intent = "plan"
    plan.subject = ref("Patient")
    plan.encounter = ref("Encounter")
    plan.careTeam = [ref("CareTeam")]

    bundle = Bundle()
    bundle.type = "transaction"
    bundle.entry = []
    for name, resource in (("CarePlan", plan), ("CareTeam", team), ("Encounter", encounter),
                           ("Patient", patient)):
        entry = BundleEntry()
        entry.fullUrl = urn[name]
        entry.resource = resource
        entry.request = BundleEntryRequest({"method": "POST", "url": name})
        bundle.entry.append(entry)

    answer = Bundle(bundle.create(server))  # POST [base]; the answer parsed strictly
    assert answer.type == "transaction-response"
    assert len(answer.entry) == 4
    ids = {}
    for name, entry in zip(("CarePlan", "CareTeam", "Encounter", "Patient"), answer.entry,
                           strict=True):
        assert entry.response.status.startswith("201")
        ids[name] = location_id(entry.response.location, name)

    stored = CarePlan.read(ids["CarePlan"], server)
    assert stored.subject.reference == f"Patient/{ids['Patient']}"
    assert stored.encounter.reference == f"Encounter/{ids['Encounter']}"
    assert stored.careTeam[0].reference == f"CareTeam/{ids['CareTeam']}"
    assert CareTeam.read(ids["CareTeam"], server).subject.reference == f"Patient/{ids['Patient']}"
    encounters = list(Encounter.where(struct={"subject": f"Patient/{ids['Patient']}"})
                      .perform_resources_iter(server))
    assert [e.id for e in encounters] == [ids["Encounter"]]
    with_includes = list(CarePlan.where(struct={"patient": ids["Patient"]})
                         .include("subject").perform_resources_iter(server))
    assert sorted(r.resource_type for r in with_includes) == ["CarePlan", "Patient"]
    check_smart_negotiation(smart_wire)
