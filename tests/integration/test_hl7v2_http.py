"""HL7 v2 over HTTP (POST /hl7v2) and the inbound message store's HTTP and CLI interfaces:
content types, versions 2.3-2.8, enhanced-mode acknowledgment, listing, replay after a
mapping fix, and recovery of messages stored but never processed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from gateway.ingest.inbox import Inbox
from gateway.ingest.setup import DEFAULT_MAPPINGS, build_ingest
from tests.integration.hl7v2_helpers import ack_of, encounter, post, sample, search


def test_post_answers_the_ack(client: TestClient) -> None:
    response = post(client, sample("north_a01_v25"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("x-application/hl7-v2+er7")
    ack = ack_of(response.content)
    assert (ack["MSA.F1"], ack["MSA.F2"]) == ("AA", "N-0001")
    assert encounter(client)["status"] == "in-progress"


def test_text_plain_is_accepted(client: TestClient) -> None:
    response = post(client, sample("north_a01_v25"), "text/plain; charset=utf-8")
    assert ack_of(response.content)["MSA.F1"] == "AA"


def test_other_content_types_get_415_operation_outcome(client: TestClient) -> None:
    response = post(client, sample("north_a01_v25"), "application/json")
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"


def test_an_empty_body_gets_400(client: TestClient) -> None:
    response = post(client, b"  ")
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


@pytest.mark.parametrize(("name", "code"), [
    ("south_a04_v23", "AA"), ("north_a11_v24", "AA"), ("north_a01_v25", "AA"),
    ("north_a01_unknown_disposition_v26", "AA"), ("north_a13_v27", "AA"),
    ("north_a40_v28", "AA"), ("north_a01_unknown_class_v25", "AE"),
])
def test_versions_2_3_to_2_8_are_acknowledged_in_their_own_version(
        client: TestClient, name: str, code: str) -> None:
    sent = sample(name)
    ack = ack_of(post(client, sent).content)
    assert ack["MSA.F1"] == code
    assert ack["MSH.F12"] == ack_of(sent)["MSH.F12"]


def test_warnings_for_unknown_optional_codes_ride_on_the_aa(client: TestClient) -> None:
    ack = ack_of(post(client, sample("north_a01_unknown_disposition_v26")).content)
    assert ack["MSA.F1"] == "AA"
    errs = [s for s in ack if str(s[0]) == "ERR"]
    assert [(str(e(2)), str(e(4))) for e in errs] == [("PV1^1^4^1", "W"), ("PV1^1^36^1", "W")]
    found = encounter(client, "urn:hl7v2:authority:NORTH|V20240100")
    assert found["hospitalization"]["dischargeDisposition"]["text"] == "99"


def test_enhanced_mode_asking_for_no_ack_gets_204(client: TestClient) -> None:
    message = sample("north_a01_v25", {"|P|2.5": "|P|2.5|||AL|NE"})
    response = post(client, message)
    assert response.status_code == 204
    assert encounter(client)["status"] == "in-progress"


def _mappings_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS, root)
    monkeypatch.setenv("GATEWAY_MAPPINGS_DIR", str(root))
    return root


def _add_patient_class(root: Path, code: str, target: str) -> None:
    path = root / "conceptmaps" / "hl7v2-0004-v3-actcode.json"
    table = json.loads(path.read_text())
    table["group"][0]["element"].append(
        {"code": code, "target": [{"code": target, "equivalence": "equivalent"}]})
    path.write_text(json.dumps(table))


def test_unmappable_message_is_kept_and_replayed_after_a_mapping_fix(
        client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _mappings_copy(tmp_path, monkeypatch)
    ack = ack_of(post(client, sample("north_a01_unknown_class_v25")).content)
    assert ack["MSA.F1"] == "AE"
    assert str(ack.segment("ERR")(2)) == "PV1^1^2^1"
    failed = client.get("/hl7v2/messages", params={"status": "error"}).json()["messages"]
    assert [(m["controlId"], m["errorLocation"]) for m in failed] == [("N-0200", "PV1-2")]
    assert search(client, "Encounter") == []
    resent = ack_of(post(client, sample("north_a01_unknown_class_v25")).content)
    assert resent["MSA.F1"] == "AE"  # the same answer until the mapping is fixed

    _add_patient_class(root, "Z", "IMP")
    replayed = client.post(f"/hl7v2/messages/{failed[0]['id']}/$replay")
    assert replayed.status_code == 200
    assert ack_of(replayed.content)["MSA.F1"] == "AA"
    found = encounter(client, "urn:hl7v2:authority:NORTH|V20240200")
    assert found["class"]["code"] == "IMP"
    assert client.get("/hl7v2/messages", params={"status": "error"}).json()["messages"] == []
    again = client.post(f"/hl7v2/messages/{failed[0]['id']}/$replay")
    assert again.status_code == 409


def test_replay_all_failed_over_http(client: TestClient, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = _mappings_copy(tmp_path, monkeypatch)
    for number in range(3):
        post(client, sample("north_a01_unknown_class_v25", {
            "N-0200": f"N-03{number}", "V20240200": f"V-R{number}"}))
    _add_patient_class(root, "Z", "AMB")
    result = client.post("/hl7v2/messages/$replay").json()
    assert [r["ackCode"] for r in result["replayed"]] == ["AA"] * 3
    assert len(search(client, "Encounter", **{"class": "AMB"})) == 3


def test_unknown_message_and_bad_status_filter(client: TestClient) -> None:
    assert client.get("/hl7v2/messages/999").status_code == 404
    assert client.post("/hl7v2/messages/999/$replay").status_code == 404
    response = client.get("/hl7v2/messages", params={"status": "lost"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_cli_lists_and_replays_failed_messages(
        client: TestClient, settings: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = _mappings_copy(tmp_path, monkeypatch)
    post(client, sample("north_a01_unknown_class_v25"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(cli_app, ["messages", "list", "--status", "error"])
        assert listed.exit_code == 0, listed.output
        assert "N-0200" in listed.output and "[PV1-2]" in listed.output
        still = runner.invoke(cli_app, ["messages", "replay", "--all-failed"])
        assert still.exit_code == 1 and "AE" in still.output
        _add_patient_class(root, "Z", "IMP")
        fixed = runner.invoke(cli_app, ["messages", "replay", "--all-failed"])
        assert fixed.exit_code == 0, fixed.output
        assert "AA" in fixed.output
    finally:
        get_settings.cache_clear()
    assert encounter(client, "urn:hl7v2:authority:NORTH|V20240200")["status"] == "in-progress"


def test_messages_stored_but_not_processed_are_recovered(app: Any,
                                                        client: TestClient) -> None:
    """A crash between storing and processing leaves a ``received`` row; start-up
    recovery processes it (the sender, never ACKed, may also resend it)."""
    inbox = Inbox(app.state.database)
    raw = sample("north_a01_v25")
    inbox.store(raw, channel="mllp", sender="EPIC^NORTH", control_id="N-0001")
    assert search(client, "Encounter") == []
    ingest = build_ingest(app.state.settings, app.state.database, app.state.fhir)
    assert ingest.recover() == 1
    assert encounter(client)["status"] == "in-progress"
    assert inbox.list("processed")[0].control_id == "N-0001"
    resent = ack_of(post(client, raw).content)
    assert resent["MSA.F1"] == "AA"
    assert len(search(client, "Encounter")) == 1
