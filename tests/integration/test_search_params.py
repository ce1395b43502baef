"""Search parameters by type (R4 search.html#ptypes), as tables of query -> expected ids.

All tables run against ``CARE_DATA`` (see test_search.py), loaded once per module into a
private gateway: five patients (``pat-gone`` deleted), two practitioners, two organizations,
a location, a group, three care teams, three encounters, four care plans (``cp-ada-old``
updated after creation, so its first version must not match), three tasks, a provenance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_search import (
    ACT,
    CAREPLAN_IDS,
    ENCOUNTER_IDS,
    LOINC,
    MRN,
    NPI,
    SCT,
    TASK_CODE,
    care_gateway,
    found,
)

Case = tuple[str, set[str]]


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with care_gateway(tmp_path_factory.mktemp("care")) as client:
        yield client


def _table(cases: list[Case]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("query", "expected"), cases, ids=[q for q, _ in cases])


PATIENTS = {"pat-ada", "pat-bjorn", "pat-cy", "pat-dee", "pat-eve"}

PATIENT_CASES: list[Case] = [
    # token on Identifier: system|value, value alone, |value (no system), system|
    (f"identifier={MRN}|MRN-1001", {"pat-ada"}),
    ("identifier=MRN-1001", {"pat-ada", "pat-bjorn"}),
    ("identifier=|MRN-1001", {"pat-bjorn"}),
    (f"identifier={MRN}|", {"pat-ada", "pat-bjorn"}),
    (f"identifier={MRN}|MRN-1002", {"pat-bjorn"}),
    ("identifier=urn:other|MRN-1001", set()),
    ("identifier=mrn-1001", set()),  # tokens are case-sensitive
    ("identifier=urn:example:ids|a\\|b", {"pat-cy"}),  # escaped pipe inside the value
    ("identifier=MRN-1002,a\\|b", {"pat-bjorn", "pat-cy"}),
    ("identifier=MRN-1001,MRN-1002", {"pat-ada", "pat-bjorn"}),
    ("identifier=MRN-1002&identifier=MRN-1001", {"pat-bjorn"}),
    (f"identifier:not={MRN}|MRN-1001", PATIENTS - {"pat-ada"}),
    ("identifier:missing=true", {"pat-dee", "pat-eve"}),
    ("identifier:missing=false", {"pat-ada", "pat-bjorn", "pat-cy"}),
    # string on HumanName: starts-with, case- and accent-insensitive, any part
    ("name=okafor", {"pat-ada", "pat-eve"}),
    ("name=OKAF", {"pat-ada", "pat-eve"}),
    ("name=ada", {"pat-ada"}),
    ("name=ngozi", {"pat-ada"}),
    ("name=muller", {"pat-bjorn"}),
    ("name=MÜLLER", {"pat-bjorn"}),
    ("name=bjorn", {"pat-bjorn"}),
    ("name=dr", {"pat-cy"}),  # prefix
    ("name=dee o'b", {"pat-dee"}),  # text
    ("name=afor", set()),  # not starts-with
    ("name:contains=afor", {"pat-ada", "pat-eve"}),
    ("name:exact=Okafor", {"pat-ada"}),
    ("name:exact=Ada", {"pat-ada"}),
    ("name=eve,cy", {"pat-eve", "pat-cy"}),
    ("name=okafor&name=eve", {"pat-eve"}),
    ("name=okafor&given=ngo", {"pat-ada"}),
    ("family=okafor", {"pat-ada", "pat-eve"}),
    ("family=Müll", {"pat-bjorn"}),
    ("family=mull", {"pat-bjorn"}),
    ("family=ada", set()),  # a given name is not a family name
    ("family:exact=Okafor", {"pat-ada"}),
    ("family:exact=okafor", set()),
    ("family:exact=Muller", set()),
    ("family:exact=Müller", {"pat-bjorn"}),
    ("family:contains=smith", {"pat-cy", "pat-eve"}),
    ("family:contains=FOR", {"pat-ada", "pat-eve"}),
    ("family:contains=ULL", {"pat-bjorn"}),
    ("family=Smith\\,J", {"pat-cy"}),  # escaped comma is part of the value
    ("family:exact=Smith\\,Jones", {"pat-cy"}),
    ("family=Jones", set()),
    ("family=jones,muller", {"pat-bjorn"}),
    ("family=o'brien", {"pat-dee"}),
    ("family=%", set()),  # SQL wildcards are plain characters
    ("family=_kafor", set()),
    ("family:contains=%", set()),
    ("family:contains=_", set()),
    ("given=eve", {"pat-eve"}),
    ("given=Bj", {"pat-bjorn"}),
    ("given=ngo", {"pat-ada"}),
    ("given=ada,eve", {"pat-ada", "pat-eve"}),
    ("given=okafor", set()),
    ("given:exact=Björn", {"pat-bjorn"}),
    ("given:exact=Bjorn", set()),
    ("given:contains=e", {"pat-dee", "pat-eve"}),
    ("given:missing=false", PATIENTS),
    ("name:missing=true", set()),
    # date on a date element, with partial dates
    ("birthdate=1948-03-02", {"pat-ada"}),
    ("birthdate=eq1948-03-02", {"pat-ada"}),
    ("birthdate=1948-03", {"pat-ada", "pat-eve"}),
    ("birthdate=1948", {"pat-ada", "pat-eve"}),
    ("birthdate=1990", {"pat-cy"}),
    ("birthdate=1990-06-15", set()),  # 1990 is wider than that day
    ("birthdate=ne1948-03-02", {"pat-bjorn", "pat-cy", "pat-eve"}),
    ("birthdate=gt1960-07-15", {"pat-cy"}),
    ("birthdate=ge1960-07-15", {"pat-bjorn", "pat-cy"}),
    ("birthdate=lt1960", {"pat-ada", "pat-eve"}),
    ("birthdate=le1960-07-15", {"pat-ada", "pat-bjorn", "pat-eve"}),
    ("birthdate=lt1948-03-02", {"pat-eve"}),  # March 1948 starts before the 2nd
    ("birthdate=gt1948-03-02", {"pat-bjorn", "pat-cy", "pat-eve"}),
    ("birthdate=sa1948-03-02", {"pat-bjorn", "pat-cy"}),
    ("birthdate=eb1960", {"pat-ada", "pat-eve"}),
    ("birthdate=eb1948-03-02", set()),
    ("birthdate=ge1948-03-01&birthdate=le1948-03-31", {"pat-ada", "pat-eve"}),
    ("birthdate=1948-03-02,1990", {"pat-ada", "pat-cy"}),
    ("birthdate=ge1961&birthdate=lt1950", set()),
    ("birthdate=1948-03-02T10:00:00Z", set()),
    ("birthdate:missing=true", {"pat-dee"}),
    ("birthdate:missing=false", {"pat-ada", "pat-bjorn", "pat-cy", "pat-eve"}),
    # token on code, boolean and ContactPoint
    ("gender=female", {"pat-ada", "pat-eve"}),
    ("gender=male,other", {"pat-bjorn", "pat-cy"}),
    ("gender=Female", set()),
    # a code's system is implied by its binding (administrative-gender)
    ("gender=http://hl7.org/fhir/administrative-gender|female", {"pat-ada", "pat-eve"}),
    ("gender=http://example.org/not-gender|female", set()),
    ("gender:not=female", {"pat-bjorn", "pat-cy", "pat-dee"}),
    ("gender:not=female,male", {"pat-cy", "pat-dee"}),
    ("gender:missing=true", {"pat-dee"}),
    ("gender=female&gender=male", set()),
    ("active=true", {"pat-ada"}),
    ("active=false", {"pat-bjorn"}),
    ("active:not=true", {"pat-bjorn", "pat-cy", "pat-dee", "pat-eve"}),
    ("active:missing=true", {"pat-cy", "pat-dee", "pat-eve"}),
    ("telecom=+1-555-0101", {"pat-ada"}),
    ("telecom=ada@example.org", {"pat-ada"}),
    ("phone=+1-555-0202", {"pat-bjorn"}),
    ("phone=+1-555-0101,+1-555-0202", {"pat-ada", "pat-bjorn"}),
    ("phone=ada@example.org", set()),
    ("email=ada@example.org", {"pat-ada"}),
    ("email=+1-555-0101", set()),
    ("telecom:missing=true", {"pat-cy", "pat-dee", "pat-eve"}),
    # _id and combinations
    ("_id=pat-ada,pat-dee,pat-gone", {"pat-ada", "pat-dee"}),
    ("_id=pat-ada&family=okafor", {"pat-ada"}),
    ("_id=pat-eve&given=ada", set()),
    ("name=okafor&gender=female&birthdate=1948", {"pat-ada", "pat-eve"}),
    ("family=okafor&birthdate=1948-03", {"pat-ada", "pat-eve"}),
    ("family=okafor&birthdate=1948-03-02&active=true", {"pat-ada"}),
]


@_table(PATIENT_CASES)
def test_patient(care: TestClient, query: str, expected: set[str]) -> None:
    assert found(care, "Patient", query) == expected


PLANS = {"cp-ada", "cp-ada-old", "cp-bjorn", "cp-group"}

CAREPLAN_CASES: list[Case] = [
    # reference: Type/id, bare id, absolute URL on this server, :Type, OR
    ("patient=Patient/pat-ada", {"cp-ada", "cp-ada-old"}),
    ("patient=pat-ada", {"cp-ada", "cp-ada-old"}),
    ("patient=http://testserver/fhir/Patient/pat-ada", {"cp-ada", "cp-ada-old"}),
    ("patient=Patient/pat-bjorn", {"cp-bjorn"}),
    ("patient=Patient/pat-dee", set()),
    ("patient=Patient/unknown", set()),
    ("patient=Group/grp-1", set()),  # patient only covers Patient subjects
    ("patient=pat-ada,pat-bjorn", {"cp-ada", "cp-ada-old", "cp-bjorn"}),
    ("patient:Patient=pat-bjorn", {"cp-bjorn"}),
    ("patient:missing=true", {"cp-group"}),
    ("subject=Patient/pat-ada", {"cp-ada", "cp-ada-old"}),
    ("subject=pat-bjorn", {"cp-bjorn"}),
    ("subject=Group/grp-1", {"cp-group"}),
    ("subject=grp-1", {"cp-group"}),
    ("subject:Group=grp-1", {"cp-group"}),
    ("subject:Patient=grp-1", set()),
    ("subject:Group=pat-ada", set()),
    ("subject:Patient=Patient/pat-ada", {"cp-ada", "cp-ada-old"}),
    ("subject:Patient=Group/grp-1", set()),
    ("subject=http://elsewhere.example.org/fhir/Patient/pat-ada", set()),
    ("subject=Group/grp-1,Patient/pat-bjorn", {"cp-group", "cp-bjorn"}),
    ("subject=Patient/pat-ada&subject=Patient/pat-bjorn", set()),
    # chained
    (f"subject:Patient.identifier={MRN}|MRN-1002", {"cp-bjorn"}),
    (f"subject:Patient.identifier={MRN}|MRN-1001", {"cp-ada", "cp-ada-old"}),
    (f"patient.identifier={MRN}|MRN-1001", {"cp-ada", "cp-ada-old"}),
    ("patient.identifier=MRN-1001", {"cp-ada", "cp-ada-old", "cp-bjorn"}),
    ("patient.identifier=|MRN-1001", {"cp-bjorn"}),
    ("patient.name=müller", {"cp-bjorn"}),
    ("patient.name=MULLER", {"cp-bjorn"}),
    ("patient.family=okafor", {"cp-ada", "cp-ada-old"}),
    ("patient.family:exact=Okafor-Smith", set()),
    ("patient.gender=female", {"cp-ada", "cp-ada-old"}),
    ("patient.birthdate=lt1950", {"cp-ada", "cp-ada-old"}),
    ("subject.name=okafor", {"cp-ada", "cp-ada-old"}),
    ("subject:Group.type=person", {"cp-group"}),
    ("patient.name=okafor&status=active", {"cp-ada"}),
    ("care-team=CareTeam/ct-ada", {"cp-ada"}),  # cp-ada-old lost its team on update
    ("care-team=ct-bjorn", {"cp-bjorn"}),
    ("care-team:missing=true", {"cp-ada-old"}),
    ("care-team.participant=Practitioner/pract-house", {"cp-ada", "cp-group"}),
    ("care-team.status=inactive", {"cp-bjorn"}),
    ("care-team.subject:Patient.name=muller", {"cp-bjorn"}),
    ("encounter=Encounter/enc-ada-1", {"cp-ada"}),
    ("encounter=enc-ada-2", set()),
    ("encounter.class=AMB", {"cp-ada"}),
    ("encounter:missing=true", {"cp-ada-old", "cp-bjorn", "cp-group"}),
    # token on code and CodeableConcept
    ("status=active", {"cp-ada", "cp-group"}),
    ("status=active,draft", {"cp-ada", "cp-group", "cp-bjorn"}),
    ("status:not=active", {"cp-ada-old", "cp-bjorn"}),
    ("status=completed", {"cp-ada-old"}),
    ("status=http://hl7.org/fhir/request-status|active", {"cp-ada", "cp-group"}),
    ("status=http://example.org/other-status|active", set()),
    ("intent=plan", {"cp-ada", "cp-group"}),
    ("intent=order", {"cp-ada-old"}),
    ("intent=proposal&status=draft", {"cp-bjorn"}),
    ("intent=plan&status:not=active", set()),
    (f"category={SCT}|734163000", {"cp-ada"}),
    ("category=734163000", {"cp-ada"}),
    (f"category={SCT}|736353004", {"cp-ada-old"}),
    ("category=http://example.org/cp-category|inpatient", {"cp-ada-old"}),
    ("category=inpatient", {"cp-ada-old"}),
    (f"category={SCT}|inpatient", set()),  # system and code from different codings
    (f"category={SCT}|", {"cp-ada", "cp-ada-old"}),
    ("category=|734163000", set()),
    ("category:missing=true", {"cp-bjorn", "cp-group"}),
    (f"category:not={SCT}|734163000", {"cp-ada-old", "cp-bjorn", "cp-group"}),
    (f"identifier={CAREPLAN_IDS}|CP-1", {"cp-ada"}),
    ("identifier=CP-2", {"cp-ada-old"}),
    ("identifier=CP-OLD", set()),  # only in the first version
    # date on Period, with open ends
    ("date=2023", {"cp-ada"}),
    ("date=2023-01", set()),
    ("date=2023-03-15", set()),
    ("date=2019", set()),  # only in the first version
    ("date=ne2023", {"cp-ada-old", "cp-bjorn", "cp-group"}),
    ("date=ge2024-06-01", {"cp-bjorn"}),
    ("date=gt2030-01-01", {"cp-bjorn"}),
    ("date=le2021-01-01", {"cp-group"}),
    ("date=lt1900", {"cp-group"}),
    ("date=lt2022-06-01", {"cp-ada-old", "cp-group"}),
    ("date=gt2023-03-01", {"cp-ada", "cp-bjorn"}),
    ("date=sa2022-12-31", {"cp-ada", "cp-bjorn"}),
    ("date=eb2023-01-01", {"cp-ada-old", "cp-group"}),
    ("date=ge2022-06-01&date=le2023-03-01", {"cp-ada", "cp-ada-old"}),
    ("date=2023,2022", {"cp-ada", "cp-ada-old"}),
    ("date:missing=false", PLANS),
    ("activity-date=2023-02", {"cp-ada"}),
    ("activity-date=2023-02-15", set()),
    ("activity-date=2022-05-05", {"cp-ada-old"}),
    ("activity-date=2022-05-05T10:00:00Z", {"cp-ada-old"}),
    ("activity-date=2022-05-05T12:00:00+02:00", {"cp-ada-old"}),
    ("activity-date=2022-05-05T10:00:00+02:00", set()),
    ("activity-date=gt2023-01-01", {"cp-ada"}),
    ("activity-date=lt2023-01-01", {"cp-ada-old"}),
    ("activity-date:missing=true", {"cp-bjorn", "cp-group"}),
    ("_id=cp-ada", {"cp-ada"}),
]


@_table(CAREPLAN_CASES)
def test_care_plan(care: TestClient, query: str, expected: set[str]) -> None:
    assert found(care, "CarePlan", query) == expected


CARETEAM_CASES: list[Case] = [
    ("patient=pat-ada", {"ct-ada"}),
    ("patient=Patient/pat-bjorn", {"ct-bjorn"}),
    ("patient=grp-1", set()),
    ("subject=Group/grp-1", {"ct-group"}),
    ("subject:Group=grp-1", {"ct-group"}),
    ("subject:Patient=pat-bjorn", {"ct-bjorn"}),
    ("subject.name=okafor", {"ct-ada"}),
    ("patient.identifier=MRN-1002", {"ct-bjorn"}),
    ("status=active", {"ct-ada"}),
    ("status=inactive,proposed", {"ct-bjorn", "ct-group"}),
    ("status:not=active", {"ct-bjorn", "ct-group"}),
    (f"category={LOINC}|LA27976-2", {"ct-ada"}),
    ("category=LA28865-6", {"ct-bjorn"}),
    (f"category={LOINC}|", {"ct-ada", "ct-bjorn"}),
    ("category:missing=true", {"ct-group"}),
    ("participant=Practitioner/pract-house", {"ct-ada", "ct-group"}),
    ("participant=pract-wilson", {"ct-bjorn"}),
    ("participant=Patient/pat-bjorn", {"ct-bjorn"}),
    ("participant:Patient=pat-bjorn", {"ct-bjorn"}),
    ("participant:Practitioner=pat-bjorn", set()),
    ("participant:Organization=org-general", {"ct-ada"}),
    ("participant=org-general,pract-wilson", {"ct-ada", "ct-bjorn"}),
    ("participant=pract-house&participant=org-general", {"ct-ada"}),
    ("participant.family=wilson", {"ct-bjorn"}),
    ("participant.family=müller", {"ct-bjorn"}),
    (f"participant:Practitioner.identifier={NPI}|1111111111", {"ct-ada", "ct-group"}),
    ("participant:Organization.name=general", {"ct-ada"}),
    ("participant:missing=true", set()),
    ("date=2023", {"ct-ada"}),
    ("date=2023-06", set()),
    ("date=ge2025", {"ct-bjorn"}),
    ("date=le2023-01-01", {"ct-ada"}),
    ("date=sa2023-12-31", {"ct-bjorn"}),
    ("date:missing=true", {"ct-group"}),
]


@_table(CARETEAM_CASES)
def test_care_team(care: TestClient, query: str, expected: set[str]) -> None:
    assert found(care, "CareTeam", query) == expected


ENCOUNTER_CASES: list[Case] = [
    ("patient=pat-ada", {"enc-ada-1", "enc-ada-2"}),
    ("subject=Patient/pat-bjorn", {"enc-bjorn"}),
    ("subject:Patient=pat-bjorn", {"enc-bjorn"}),
    ("patient.gender=male", {"enc-bjorn"}),
    ("status=finished", {"enc-ada-1"}),
    ("status=in-progress,planned", {"enc-ada-2", "enc-bjorn"}),
    ("status:not=finished", {"enc-ada-2", "enc-bjorn"}),
    # token on Coding
    (f"class={ACT}|AMB", {"enc-ada-1"}),
    ("class=IMP", {"enc-ada-2"}),
    ("class=|HH", set()),
    (f"class={ACT}|", {"enc-ada-1", "enc-ada-2", "enc-bjorn"}),
    ("class=http://other.example.org|AMB", set()),
    ("class:not=AMB", {"enc-ada-2", "enc-bjorn"}),
    (f"type={SCT}|185349003", {"enc-ada-1"}),
    ("type=439740005", {"enc-bjorn"}),
    ("type:missing=true", {"enc-ada-2"}),
    (f"identifier={ENCOUNTER_IDS}|E-1", {"enc-ada-1"}),
    ("identifier=E-3", {"enc-bjorn"}),
    ("identifier:missing=true", {"enc-ada-2"}),
    # reference
    ("location=Location/loc-ward", {"enc-ada-1"}),
    ("location=loc-ward", {"enc-ada-1"}),
    ("location.name=ward", {"enc-ada-1"}),
    ("location:missing=true", {"enc-ada-2", "enc-bjorn"}),
    ("participant=Practitioner/pract-house", {"enc-ada-1"}),
    ("participant=pract-wilson", {"enc-ada-2"}),
    ("participant:Practitioner=pract-wilson", {"enc-ada-2"}),
    ("participant:missing=true", {"enc-bjorn"}),
    ("participant.name=gregory", {"enc-ada-1"}),
    (f"participant:Practitioner.identifier={NPI}|2222222222", {"enc-ada-2"}),
    ("practitioner=pract-house", {"enc-ada-1"}),
    ("service-provider=Organization/org-general", {"enc-ada-1"}),
    ("service-provider=org-clinic", {"enc-ada-2"}),
    ("service-provider.name=general", {"enc-ada-1"}),
    ("service-provider.name=riverside", {"enc-ada-2"}),
    ("service-provider:missing=true", {"enc-bjorn"}),
    (f"reason-code={SCT}|44054006", {"enc-ada-1"}),
    ("reason-code=38341003", {"enc-ada-2"}),
    ("reason-code=44054006,38341003", {"enc-ada-1", "enc-ada-2"}),
    ("reason-code:missing=true", {"enc-bjorn"}),
    # date on Period with time zones: enc-ada-1 is 08:00Z-09:30Z on 2023-03-10,
    # enc-ada-2 starts 2024-02-01T22:00Z and has no end, enc-bjorn is 2022-12-31..2023-01-02
    ("date=2023-03-10", {"enc-ada-1"}),
    ("date=2023-03", {"enc-ada-1"}),
    ("date=2023-03-10T08:00:00Z", set()),
    ("date=ge2023-03-10T09:15:00Z", {"enc-ada-1", "enc-ada-2"}),
    ("date=gt2023-03-10T09:30:00Z", {"enc-ada-2"}),
    ("date=ge2023-03-10T10:30:00+01:00", {"enc-ada-1", "enc-ada-2"}),
    ("date=gt2023-03-10T10:30:00+01:00", {"enc-ada-2"}),
    ("date=lt2023-03-10T08:30:00Z", {"enc-ada-1", "enc-bjorn"}),
    ("date=lt2023-03-10T09:00:00+01:00", {"enc-bjorn"}),
    ("date=le2023-03-10T09:00:00+01:00", {"enc-ada-1", "enc-bjorn"}),
    ("date=lt2023-03-10T03:00:00-05:00", {"enc-bjorn"}),
    ("date=lt2023-03-10T03:01:00-05:00", {"enc-ada-1", "enc-bjorn"}),
    ("date=2023-01", set()),
    ("date=ge2023-01-01&date=le2023-01-31", {"enc-bjorn"}),
    ("date=2024", set()),
    ("date=2024-02-01", set()),
    ("date=gt2030", {"enc-ada-2"}),
    ("date=sa2024-01-31", {"enc-ada-2"}),
    ("date=sa2024-02-01T21:59:59Z", {"enc-ada-2"}),
    ("date=sa2024-02-01T22:00:00Z", set()),
    ("date=eb2023-01-03", {"enc-bjorn"}),
    ("date=eb2023-01-02", set()),
    ("date=ne2023-03-10", {"enc-ada-2", "enc-bjorn"}),
    ("date=2022-12-31,2023-03-10", {"enc-ada-1"}),
    ("date=2022-12-31T00:00:00Z,2023-03-10T08:00:00Z", set()),
    ("date=ge2022-12-31&date=le2023-01-02", {"enc-bjorn"}),
]


@_table(ENCOUNTER_CASES)
def test_encounter(care: TestClient, query: str, expected: set[str]) -> None:
    assert found(care, "Encounter", query) == expected


def test_encounter_date_approximately(care: TestClient) -> None:
    near = found(care, "Encounter", "date=ap2023-03-10")
    assert "enc-ada-1" in near
    assert "enc-ada-2" not in near  # a year away is not "approximately"
    assert found(care, "Encounter", "date=ap1990-01-01") == set()


TASK_CASES: list[Case] = [
    ("patient=pat-ada", {"task-1", "task-3"}),
    ("patient=Patient/pat-bjorn", {"task-2"}),
    ("subject=Patient/pat-ada", {"task-1", "task-3"}),
    ("subject:Patient=pat-ada", {"task-1", "task-3"}),
    ("patient.name=okafor", {"task-1", "task-3"}),
    ("focus=CarePlan/cp-ada", {"task-1"}),
    ("focus=cp-ada", {"task-1"}),
    ("focus=Encounter/enc-bjorn", {"task-2"}),
    ("focus=enc-bjorn", {"task-2"}),
    ("focus:Encounter=enc-bjorn", {"task-2"}),
    ("focus:CarePlan=enc-bjorn", set()),
    ("focus:missing=true", {"task-3"}),
    ("focus:CarePlan.status=active", {"task-1"}),
    ("focus:Encounter.status=planned", {"task-2"}),
    ("focus=CarePlan/cp-ada,Encounter/enc-bjorn", {"task-1", "task-2"}),
    ("status=requested", {"task-1"}),
    ("status=completed,in-progress", {"task-2", "task-3"}),
    ("status:not=completed", {"task-1", "task-3"}),
    ("owner=Practitioner/pract-house", {"task-1"}),
    ("owner=pract-house", {"task-1"}),
    ("owner:Organization=org-general", {"task-2"}),
    ("owner:Practitioner=org-general", set()),
    ("owner:missing=true", {"task-3"}),
    ("owner.name=general", {"task-2"}),
    ("owner:Practitioner.name=house", {"task-1"}),
    (f"code={TASK_CODE}|fulfill", {"task-1"}),
    ("code=approve", {"task-2"}),
    (f"code={TASK_CODE}|", {"task-1", "task-2"}),
    ("code=|approve", set()),
    ("code:missing=true", {"task-3"}),
    ("code:not=fulfill", {"task-2", "task-3"}),
    # dateTime with time zones: task-1 2023-04-01T08:30Z, task-3 2023-04-02T04:30Z,
    # task-2 2024-01-15T12:00Z
    ("authored-on=2023-04-01T08:30:00Z", {"task-1"}),
    ("authored-on=2023-04-01T10:30:00+02:00", {"task-1"}),
    ("authored-on=2023-04-01T23:30:00-05:00", {"task-3"}),
    ("authored-on=2023-04-02T04:30:00Z", {"task-3"}),
    ("authored-on=2023-04", {"task-1", "task-3"}),
    ("authored-on=2023", {"task-1", "task-3"}),
    ("authored-on=2024-01", {"task-2"}),
    ("authored-on=ge2023-04-02T00:00:00Z", {"task-2", "task-3"}),
    ("authored-on=lt2023-04-01T23:00:00-05:00", {"task-1"}),
    ("authored-on=gt2023-04-01T08:30:00Z", {"task-2", "task-3"}),
    ("authored-on=le2023-04-01T08:30:00Z", {"task-1"}),
    ("authored-on=ne2023-04-01T08:30:00Z", {"task-2", "task-3"}),
    ("authored-on=eb2024", {"task-1", "task-3"}),
    ("authored-on=sa2023-04-01T08:30:00Z", {"task-2", "task-3"}),
    ("authored-on:missing=true", set()),
    ("status=requested&owner=pract-house&authored-on=2023", {"task-1"}),
]


@_table(TASK_CASES)
def test_task(care: TestClient, query: str, expected: set[str]) -> None:
    assert found(care, "Task", query) == expected


def test_resources_of_other_types_are_never_matched(care: TestClient) -> None:
    # CarePlan, CareTeam, Encounter and Task all refer to pat-ada through "patient"
    assert found(care, "CareTeam", "patient=pat-ada") == {"ct-ada"}
    assert found(care, "Provenance", "target=CarePlan/cp-ada") == {"prov-1"}
    assert found(care, "Provenance", "patient=pat-ada") == {"prov-1"}
    assert found(care, "Practitioner", "name=house") == {"pract-house"}
    assert found(care, "Organization", "name=general") == {"org-general"}
