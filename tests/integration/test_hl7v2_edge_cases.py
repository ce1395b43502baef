"""Edge cases from another implementation's samples (tests/data/hl7v2/bridge/, byte for
byte): ISO 8859-1 and UTF-8 text per MSH-18, LF and CRLF segment ends, the HL7 null, an A08
name change and an A40 merge, over a real MLLP socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.ingest.setup import build_ingest
from tests.integration.hl7v2_helpers import (
    SAMPLES,
    Listener,
    ack_of,
    post,
    read,
    sample,
    search,
)

BRIDGE = SAMPLES / "bridge"


def _raw(name: str, replace: dict[bytes, bytes] | None = None) -> bytes:
    data = (BRIDGE / f"{name}.hl7").read_bytes()
    for old, new in (replace or {}).items():
        data = data.replace(old, new)
    return data


@pytest.fixture
def listener(app: Any, client: TestClient) -> Iterator[Listener]:
    with Listener(build_ingest(app.state.settings, app.state.database,
                               app.state.fhir)) as running:
        yield running


def _patient(client: TestClient, mrn: str) -> dict[str, Any]:
    found = search(client, "Patient", identifier=f"urn:hl7v2:authority:SYNTH_HOSP|{mrn}")
    assert len(found) == 1
    return found[0]


def test_latin1_v23_with_lf_and_hl7_null(listener: Listener, client: TestClient) -> None:
    with listener.connect() as mllp:
        assert ack_of(mllp.send(_raw("adt_a04_v23_latin1")))["MSA.F1"] == "AA"
    patient = _patient(client, "SYN100555")
    assert patient["name"][0] == {"family": "MUÑOZ", "given": ["MARÍA", "JOSÉ"]}
    assert "telecom" not in patient  # PID-13 was the HL7 null ""
    assert {i["value"] for i in patient["identifier"]} == {"C-55123", "SYN100555"}
    visit = search(client, "Encounter", identifier="urn:hl7v2:authority:SYNTH_HOSP|V900777")
    assert visit[0]["status"] == "arrived" and visit[0]["class"]["code"] == "IMP"


def test_utf8_register_then_name_change(listener: Listener, client: TestClient) -> None:
    with listener.connect() as mllp:
        assert ack_of(mllp.send(_raw("adt_a04_register")))["MSA.F1"] == "AA"
        assert _patient(client, "SYN100234")["name"][0]["family"] == "NÚÑEZ"
        assert ack_of(mllp.send(_raw("adt_a08_name_change")))["MSA.F1"] == "AA"
    patient = _patient(client, "SYN100234")
    assert patient["name"][0]["family"] == "NÚÑEZ-GARCÍA"
    assert patient["telecom"] == [
        {"system": "phone", "value": "2105550100", "use": "home"},
        {"system": "email", "value": "jose.nunez@example.org"}]


def test_a40_merge_of_a_known_record(listener: Listener, client: TestClient) -> None:
    old_record = {b"SYN100234^^^SYNTH_HOSP^MR~E77120^^^SYNTH_EMPI^PI": b"SYN100999^^^SYNTH_HOSP^MR",
                  b"RIS00001": b"RIS00000", b"V900001": b"V900000"}
    with listener.connect() as mllp:
        assert ack_of(mllp.send(_raw("adt_a04_register", old_record)))["MSA.F1"] == "AA"
        assert ack_of(mllp.send(_raw("adt_a04_register")))["MSA.F1"] == "AA"
        assert ack_of(mllp.send(_raw("adt_a40_merge")))["MSA.F1"] == "AA"
    merged, survivor = _patient(client, "SYN100999"), _patient(client, "SYN100234")
    assert merged["link"][0] == {"other": {"reference": f"Patient/{survivor['id']}"},
                                 "type": "replaced-by"}
    old_visit = search(client, "Encounter",
                       identifier="urn:hl7v2:authority:SYNTH_HOSP|V900000")[0]
    assert read(client, old_visit["subject"]["reference"])["id"] == survivor["id"]


def test_a40_naming_an_unknown_record_is_accepted_with_a_warning(
        listener: Listener, client: TestClient) -> None:
    with listener.connect() as mllp:
        ack = ack_of(mllp.send(_raw("adt_a40_merge")))
    assert ack["MSA.F1"] == "AA"
    assert str(ack.segment("ERR")(4)) == "W" and "MRG" in str(ack.segment("ERR")(2))


def test_a_nul_byte_is_rejected_with_an_err_and_the_raw_bytes_kept(client: TestClient) -> None:
    message = sample("north_a01_v25", {"NORTH^2.16": "NOR\x00TH^2.16"})
    reply = ack_of(post(client, message).text)
    assert str(reply.segment("MSA")[1]) == "AR"
    err = reply.segment("ERR")
    assert str(err[2]) == "MSH^1" and str(err[3]).startswith("102")
    rejected = client.get("/hl7v2/messages", params={"status": "rejected"}).json()["messages"]
    assert len(rejected) == 1 and "NUL" in rejected[0]["error"]
    assert search(client, "Encounter") == []
