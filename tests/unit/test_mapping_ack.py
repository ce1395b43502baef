"""ACKs built from the inbound MSH (HL7 v2.5 sections 2.9 and 2.14; tables 0008, 0155,
0357): swapped sender/receiver, MSA-2 = MSH-10, ERR naming the field, enhanced mode."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from gateway.ingest.ack import AckError, InboundMsh, ack_wanted, build_ack

NOW = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
MSH = ("MSH|^~\\&|EPIC|NORTH|GATEWAY|CAREGW|20240305083000||ADT^A01^ADT_A01|N-0001|P|{v}"
       "|||{acc}|{app}")


def _msh(version: str = "2.5", accept: str = "", application: str = "") -> InboundMsh:
    return InboundMsh.from_text(MSH.format(v=version, acc=accept, app=application))


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    ack = hl7.parse(build_ack(_msh(), "AA", "ACK-1", now=NOW))
    assert str(ack.segment("MSH")(3)) == "GATEWAY" and str(ack.segment("MSH")(4)) == "CAREGW"
    assert str(ack.segment("MSH")(5)) == "EPIC" and str(ack.segment("MSH")(6)) == "NORTH"
    assert str(ack.segment("MSH")(9)) == "ACK^A01^ACK"
    assert str(ack.segment("MSH")(10)) == "ACK-1"
    assert str(ack.segment("MSH")(12)) == "2.5"
    assert (str(ack.segment("MSA")(1)), str(ack.segment("MSA")(2))) == ("AA", "N-0001")


def test_ae_names_the_field_in_err_for_v25_and_later() -> None:
    text = build_ack(_msh("2.8"), "AE", "A2", text="x", now=NOW, errors=[
        AckError("PV1-2", "PV1-2 code 'Z' is unknown | really", "103")])
    err = hl7.parse(text).segment("ERR")
    assert str(err(2)) == "PV1^1^2^1"
    assert str(err(3)) == "103^Table value not found^HL70357"
    assert str(err(4)) == "E"
    assert "\\F\\" in text  # the | in the message text is escaped
    assert hl7.parse(text)["ERR.F8"] == "PV1-2 code 'Z' is unknown | really"


def test_before_v25_err_uses_err1_and_msa3() -> None:
    text = build_ack(_msh("2.3"), "AR", "A3", text="bad", now=NOW,
                     errors=[AckError("MSH-9.2", "unsupported", "201")])
    parsed = hl7.parse(text)
    assert str(parsed.segment("MSA")(3)) == "bad"
    assert str(parsed.segment("ERR")(1)) == "MSH^1^9^201&Unsupported event code"


def test_unparseable_input_still_gets_an_ack() -> None:
    text = build_ack(InboundMsh.from_text("garbage"), "AR", "A4", now=NOW)
    assert hl7.parse(text)["MSA.F1"] == "AR"


@pytest.mark.parametrize(("accept", "application", "code", "wanted"), [
    ("", "", "AE", True),
    ("AL", "NE", "AA", False),
    ("", "AL", "AA", True),
    ("", "ER", "AA", False),
    ("", "ER", "AE", True),
    ("", "SU", "AA", True),
    ("", "SU", "AR", False),
    ("NE", "", "AA", False),
])
def test_enhanced_mode_follows_msh15_and_msh16(accept: str, application: str, code: str,
                                                wanted: bool) -> None:
    assert ack_wanted(_msh(accept=accept, application=application), code) is wanted
