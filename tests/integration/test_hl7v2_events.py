"""ADT trigger events end to end (POST /hl7v2, then the FHIR API): two sending facilities
sharing a patient, out-of-order and burst delivery, cancels, and A40 merges."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.hl7v2_helpers import (
    NORTH_VISIT,
    SSN,
    ack_of,
    encounter,
    post,
    read,
    sample,
    search,
)

SOUTH_VISIT = "urn:hl7v2:authority:SOUTH|S-ENC-4410"


def _send(client: TestClient, name: str, replace: dict[str, str] | None = None) -> str:
    return str(ack_of(post(client, sample(name, replace)).content)["MSA.F1"])


def test_two_facilities_share_one_patient_by_identifier(client: TestClient) -> None:
    assert _send(client, "north_a01_v25") == "AA"
    assert _send(client, "south_a04_v23") == "AA"
    patients = search(client, "Patient", identifier=SSN)
    assert len(patients) == 1
    assert {i["system"] for i in patients[0]["identifier"]} == {
        "urn:hl7v2:authority:NORTH", "http://hl7.org/fhir/sid/us-ssn",
        "urn:oid:2.16.840.1.113883.3.9999.2"}
    north, south = encounter(client, NORTH_VISIT), encounter(client, SOUTH_VISIT)
    assert north["subject"] == south["subject"] == {"reference": f"Patient/{patients[0]['id']}"}
    assert south["status"] == "arrived" and south["class"]["code"] == "EMER"
    assert read(client, south["serviceProvider"]["reference"])["name"] == "SOUTH"
    assert south["location"][0]["period"]["start"] == "2024-03-15T22:10:00-05:00"


def test_facility_code_override_and_update_keep_status(client: TestClient) -> None:
    _send(client, "south_a04_v23")
    assert _send(client, "south_a08_v26") == "AA"
    updated = encounter(client, SOUTH_VISIT)
    assert updated["class"]["code"] == "OBSENC"
    assert updated["status"] == "arrived"
    history = client.get(f"/fhir/Encounter/{updated['id']}/_history").json()
    assert history["total"] == 2


def test_discharge_before_admit_is_applied_in_event_time_order(client: TestClient) -> None:
    assert _send(client, "north_a03_v25") == "AA"
    assert encounter(client)["status"] == "finished"
    assert _send(client, "north_a01_v25") == "AA"
    assert _send(client, "north_a02_v25") == "AA"
    found = encounter(client)
    assert found["status"] == "finished"
    assert found["period"] == {"start": "2024-03-05T08:15:00+00:00",
                               "end": "2024-03-09T10:45:00+00:00"}
    assert [(e["location"]["display"], e["status"]) for e in found["location"]] == [
        ("4W 412 B", "completed"), ("ICU 2 A", "completed")]
    versions = client.get(f"/fhir/Encounter/{found['id']}/_history").json()
    assert versions["total"] == 3  # every message applied, none collapsed


def test_register_then_admit_in_one_burst(client: TestClient) -> None:
    replace = {"V20240001": "V-BURST", "N-0001": "B-2"}
    register = sample("north_a01_v25", {**replace, "ADT^A01^ADT_A01": "ADT^A04^ADT_A01",
                                        "EVN|A01|20240305082500": "EVN|A04|20240305080000",
                                        "N-0001": "B-1"})
    admit = sample("north_a01_v25", replace)
    assert ack_of(post(client, register).content)["MSA.F1"] == "AA"
    assert ack_of(post(client, admit).content)["MSA.F1"] == "AA"
    found = encounter(client, "urn:hl7v2:authority:NORTH|V-BURST")
    assert found["status"] == "in-progress"


def test_cancel_admit_marks_the_encounter_entered_in_error(client: TestClient) -> None:
    _send(client, "north_a01_v25")
    assert _send(client, "north_a11_v24") == "AA"
    assert encounter(client)["status"] == "entered-in-error"


def test_cancel_transfer_returns_to_the_previous_bed(client: TestClient) -> None:
    _send(client, "north_a01_v25")
    _send(client, "north_a02_v25")
    cancel = {"ADT^A02^ADT_A02": "ADT^A12^ADT_A12", "EVN|A02|20240306140500":
              "EVN|A12|20240306150000", "N-0002": "N-0012"}
    assert _send(client, "north_a02_v25", cancel) == "AA"
    found = encounter(client)
    assert [(e["location"]["display"], e["status"]) for e in found["location"]] == [
        ("4W 412 B", "active")]


def test_a40_merges_patients_and_repoints_encounters(client: TestClient) -> None:
    old = {"N100234^^^NORTH^MR~123-45-6789^^^SSA^SS": "N999001^^^NORTH^MR",
           "V20240001": "V-OLD", "N-0001": "N-0500"}
    assert _send(client, "north_a01_v25", old) == "AA"
    assert _send(client, "north_a01_v25") == "AA"
    patients = {p["identifier"][0]["value"]: p["id"] for p in search(client, "Patient")}
    assert set(patients) == {"N999001", "N100234"}
    assert _send(client, "north_a40_v28") == "AA"
    survivor = read(client, f"Patient/{patients['N100234']}")
    merged = read(client, f"Patient/{patients['N999001']}")
    assert merged["active"] is False
    assert merged["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"},
                               "type": "replaced-by"}]
    assert survivor["link"] == [{"other": {"reference": f"Patient/{merged['id']}"},
                                 "type": "replaces"}]
    moved = encounter(client, "urn:hl7v2:authority:NORTH|V-OLD")
    assert moved["subject"] == {"reference": f"Patient/{survivor['id']}"}
    later = {**old, "N-0500": "N-0501", "ADT^A01^ADT_A01": "ADT^A08^ADT_A01"}
    assert _send(client, "north_a01_v25", later) == "AA"
    assert encounter(client, "urn:hl7v2:authority:NORTH|V-OLD")["subject"] == {
        "reference": f"Patient/{survivor['id']}"}  # the old MRN now finds the survivor


def test_a_message_without_pid_is_stored_with_its_error(client: TestClient) -> None:
    ack = ack_of(post(client, sample("south_a01_no_pid_v25")).content)
    assert ack["MSA.F1"] == "AE"
    assert str(ack.segment("ERR")(3)).startswith("100^")
    stored = client.get("/hl7v2/messages", params={"status": "error"}).json()["messages"]
    assert [(m["controlId"], m["errorLocation"]) for m in stored] == [("S-7800", "PID")]


def test_preadmit_then_admit_then_class_change(client: TestClient) -> None:
    visit = {"V20240001": "V-PRE", "N100234": "N-PRE-1"}
    preadmit = {**visit, "ADT^A01^ADT_A01": "ADT^A05^ADT_A05", "N-0001": "P-1",
                "EVN|A01|20240305082500": "EVN|A05|20240301090000"}
    assert _send(client, "north_a01_v25", preadmit) == "AA"
    planned = encounter(client, "urn:hl7v2:authority:NORTH|V-PRE")
    assert planned["status"] == "planned"
    assert planned["location"][0]["status"] == "planned"
    assert _send(client, "north_a01_v25", {**visit, "N-0001": "P-2"}) == "AA"
    admitted = encounter(client, "urn:hl7v2:authority:NORTH|V-PRE")
    assert admitted["status"] == "in-progress"
    assert admitted["location"][0]["status"] == "active"
    to_outpatient = {**visit, "ADT^A01^ADT_A01": "ADT^A07^ADT_A06", "N-0001": "P-3",
                     "EVN|A01|20240305082500": "EVN|A07|20240306090000", "PV1|1|I|": "PV1|1|O|"}
    assert _send(client, "north_a01_v25", to_outpatient) == "AA"
    changed = encounter(client, "urn:hl7v2:authority:NORTH|V-PRE")
    assert changed["class"]["code"] == "AMB" and changed["status"] == "in-progress"


def test_a_late_message_does_not_overwrite_newer_demographics(client: TestClient) -> None:
    renamed = {"ADT^A01^ADT_A01": "ADT^A08^ADT_A01", "N-0001": "N-0800",
               "EVN|A01|20240305082500": "EVN|A08|20240307090000",
               "Okafor^Grace^A^^Mrs^^L": "Okafor-Bell^Grace^A^^Mrs^^L"}
    assert _send(client, "north_a01_v25", renamed) == "AA"
    assert _send(client, "north_a01_v25") == "AA"  # older: event time 2024-03-05
    patient = read(client, encounter(client)["subject"]["reference"])
    assert patient["name"][0]["family"] == "Okafor-Bell"
    assert encounter(client)["period"]["start"] == "2024-03-05T08:15:00+00:00"


def test_a40_with_two_merge_groups(client: TestClient) -> None:
    people = {"N999001": "V-M1", "N100234": "V-M2", "N999002": "V-M3", "N200000": "V-M4"}
    for number, (mrn, visit) in enumerate(people.items()):
        assert _send(client, "north_a01_v25", {
            "N100234^^^NORTH^MR~123-45-6789^^^SSA^SS": f"{mrn}^^^NORTH^MR",
            "V20240001": visit, "N-0001": f"N-06{number}"}) == "AA"
    assert _send(client, "north_a40_two_pairs_v25") == "AA"
    by_mrn = {p["identifier"][0]["value"]: p for p in search(client, "Patient")}
    for prior, survivor in (("N999001", "N100234"), ("N999002", "N200000")):
        assert by_mrn[prior]["link"] == [{"other": {
            "reference": f"Patient/{by_mrn[survivor]['id']}"}, "type": "replaced-by"}]
        assert by_mrn[prior]["active"] is False
    moved = encounter(client, "urn:hl7v2:authority:NORTH|V-M3")
    assert moved["subject"]["reference"] == f"Patient/{by_mrn['N200000']['id']}"
