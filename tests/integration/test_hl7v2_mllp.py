"""HL7 v2 over a real MLLP socket on 127.0.0.1: ACKs, Encounters read back through the FHIR
API, bad input answered without disturbing other connections, duplicates, concurrency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.ingest.setup import build_ingest
from tests.integration.hl7v2_helpers import (
    Listener,
    ack_of,
    encounter,
    read,
    sample,
    search,
)


@pytest.fixture
def listener(app: Any, client: TestClient) -> Iterator[Listener]:
    ingest = build_ingest(app.state.settings, app.state.database, app.state.fhir)
    with Listener(ingest) as running:
        yield running


def test_a01_over_mllp_is_acknowledged_and_readable_as_fhir(listener: Listener,
                                                            client: TestClient) -> None:
    with listener.connect() as mllp:
        ack = ack_of(mllp.send(sample("north_a01_v25")))
    assert ack["MSA.F1"] == "AA" and ack["MSA.F2"] == "N-0001"
    assert ack["MSH.F5"] == "EPIC" and ack["MSH.F12"] == "2.5"
    found = encounter(client)
    assert found["status"] == "in-progress"
    assert found["class"]["code"] == "IMP"
    assert found["period"] == {"start": "2024-03-05T08:15:00+00:00"}
    assert found["hospitalization"]["admitSource"]["coding"][0]["code"] == "emd"
    assert found["priority"]["coding"][0]["code"] == "EM"
    roles = {p["type"][0]["coding"][0]["code"]: p["individual"]["display"]
             for p in found["participant"]}
    assert roles == {"ATND": "Dr Maria L Reyes", "REF": "Dr David Chen",
                     "ADM": "Dr Maria L Reyes"}
    assert found["location"][0]["status"] == "active"
    assert read(client, found["location"][0]["location"]["reference"])["name"] == "4W 412 B"
    assert read(client, found["serviceProvider"]["reference"])["name"] == "NORTH"
    patient = read(client, found["subject"]["reference"])
    assert {i["system"] for i in patient["identifier"]} == {
        "urn:hl7v2:authority:NORTH", "http://hl7.org/fhir/sid/us-ssn"}
    assert patient["name"][0]["family"] == "Okafor" and patient["birthDate"] == "1948-03-12"
    assert found["meta"]["source"].startswith("urn:gateway:inbound-message:")


def test_a_stay_over_one_connection(listener: Listener, client: TestClient) -> None:
    with listener.connect() as mllp:
        for name in ("north_a01_v25", "north_a02_v25", "north_a03_v25"):
            assert ack_of(mllp.send(sample(name)))["MSA.F1"] == "AA"
        discharged = encounter(client)
        assert discharged["status"] == "finished"
        assert discharged["period"] == {"start": "2024-03-05T08:15:00+00:00",
                                        "end": "2024-03-09T10:45:00+00:00"}
        assert [(e["location"]["display"], e["status"], e["period"].get("end"))
                for e in discharged["location"]] == [
            ("4W 412 B", "completed", "2024-03-06T14:05:00+00:00"),
            ("ICU 2 A", "completed", "2024-03-09T10:45:00+00:00")]
        disposition = discharged["hospitalization"]["dischargeDisposition"]["coding"]
        assert [c["code"] for c in disposition] == ["snf", "03"]
        assert ack_of(mllp.send(sample("north_a13_v27")))["MSA.F1"] == "AA"
    reopened = encounter(client)
    assert reopened["status"] == "in-progress"
    assert "end" not in reopened["period"]
    assert "dischargeDisposition" not in reopened.get("hospitalization", {})
    assert reopened["location"][-1]["status"] == "active"


def test_a_resent_message_gets_the_same_ack_and_no_duplicate(listener: Listener,
                                                             client: TestClient) -> None:
    with listener.connect() as mllp:
        first = mllp.send(sample("north_a01_v25"))
        second = mllp.send(sample("north_a01_v25"))
    assert first == second
    found = encounter(client)
    history = client.get(f"/fhir/Encounter/{found['id']}/_history").json()
    assert history["total"] == 1
    assert len(client.get("/hl7v2/messages").json()["messages"]) == 1


def test_many_concurrent_connections(listener: Listener, client: TestClient) -> None:
    def one_sender(number: int) -> list[str]:
        codes = []
        with listener.connect() as mllp:
            for trigger in ("A01", "A03"):
                message = sample(f"north_{trigger.lower()}_v25", {
                    "V20240001": f"V-C{number}", "N-000": f"C{number}-",
                    "N100234": f"MRN{number}", "123-45-6789": f"999-00-{number:04d}"})
                codes.append(ack_of(mllp.send(message))["MSA.F1"])
        return codes

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_sender, range(8)))
    assert results == [["AA", "AA"]] * 8
    finished = search(client, "Encounter", status="finished", _count="100")
    assert len(finished) == 8
    assert len(search(client, "Patient", _count="100")) == 8
    assert len(search(client, "Organization", _count="100")) == 1  # shared, created once
    assert len(search(client, "Practitioner", _count="100")) == 2
    assert len(search(client, "Location", _count="100")) == 2


def test_bad_input_is_answered_and_other_connections_keep_working(
        listener: Listener, client: TestClient) -> None:
    with listener.connect() as bad, listener.connect() as good:
        garbage = ack_of(bad.send(b"\x00\x01 this is not HL7"))
        assert garbage["MSA.F1"] == "AR"
        assert good.send(sample("north_a01_v25")).count(b"MSA|AA") == 1
        bad.send_raw(b"\x0bMSH|^~\\&|EPIC|NORTH|GW|GW|2024||ADT^A01|T-1|P|2.5\rPID|1|"
                     + b"\x0b" + sample("north_a02_v25") + b"\x1c\x0d")
        truncated, transfer = ack_of(bad.read_ack()), ack_of(bad.read_ack())
        assert (truncated["MSA.F1"], truncated["MSA.F2"]) == ("AR", "T-1")
        assert transfer["MSA.F1"] == "AA"
        no_pid = ack_of(bad.send(sample("south_a01_no_pid_v25")))
        assert no_pid["MSA.F1"] == "AE" and str(no_pid.segment("ERR")(2)) == "PID^1"
        unknown = ack_of(bad.send(sample("north_a01_v25", {"ADT^A01^ADT_A01": "ADT^A99",
                                                           "N-0001": "N-0099"})))
        assert unknown["MSA.F1"] == "AR"
        assert str(unknown.segment("ERR")(2)) == "MSH^1^9^1^2"
        assert str(unknown.segment("ERR")(3)).startswith("201^")
        assert good.send(sample("north_a03_v25")).count(b"MSA|AA") == 1
    assert encounter(client)["status"] == "finished"
    stored = client.get("/hl7v2/messages").json()["messages"]
    assert sorted(m["status"] for m in stored) == [
        "error", "processed", "processed", "processed", "rejected", "rejected", "rejected"]
    rejected = client.get("/hl7v2/messages", params={"status": "rejected"}).json()["messages"]
    raws = [client.get(f"/hl7v2/messages/{m['id']}").json()["raw"] for m in rejected]
    assert any("this is not HL7" in raw for raw in raws)
    assert any(raw.startswith("MSH|^~\\&|EPIC|NORTH|GW|GW|2024||ADT^A01|T-1") for raw in raws)


def test_a_connection_closed_inside_a_frame_keeps_the_bytes(listener: Listener,
                                                            client: TestClient) -> None:
    with listener.connect() as mllp:
        mllp.send_raw(b"\x0bMSH|^~\\&|EPIC|NORTH|GW|GW|2024||ADT^A01|CUT-1|P|2.5\rPID|1")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stored = client.get("/hl7v2/messages", params={"status": "rejected"}).json()
        if stored["messages"]:
            break
        time.sleep(0.05)
    assert len(stored["messages"]) == 1
    assert "cut short" in stored["messages"][0]["error"]


def test_concurrent_messages_naming_new_practitioners_in_opposite_order(
        listener: Listener, client: TestClient) -> None:
    """Each sender creates the same two new Practitioners, half of them in the opposite
    order (PV1-7 and PV1-8 swapped): all are acknowledged AA, each Practitioner exists
    once (on PostgreSQL a deadlock between two such messages is retried)."""
    first, second = "7001^Ames^Ann^^^Dr", "7002^Brook^Ben^^^Dr"

    def one_sender(number: int) -> str:
        attending, referring = (first, second) if number % 2 else (second, first)
        message = sample("north_a01_v25", {
            "1689012345^Reyes^Maria^L^^Dr^^^NPI|5550001^Chen^David^^^Dr":
                f"{attending}|{referring}",
            "|I|V20240001": f"|I|V-D{number}", "N-0001": f"D-{number}",
            "N100234": f"DM{number}", "123-45-6789": f"888-00-{number:04d}"})
        with listener.connect() as mllp:
            return str(ack_of(mllp.send(message))["MSA.F1"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one_sender, range(16))) == ["AA"] * 16
    for identifier in ("7001", "7002"):
        assert len(search(client, "Practitioner",
                          identifier=f"urn:hl7v2:authority:NORTH|{identifier}")) == 1
