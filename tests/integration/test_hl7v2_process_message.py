"""Da Vinci Unsolicited Notifications at POST /fhir/$process-message: the focus Encounter
and its bundled Patient, Practitioner, Location and Organization are stored (found by
identifier), resends change nothing, older notifications never regress a newer state, and
bad Bundles get an OperationOutcome."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.hl7v2_helpers import post, read, sample, search

ADMIT = json.loads((Path(__file__).parents[1] / "data" / "davinci" /
                    "notification-admit.json").read_text())
VISIT = "http://north.example.org/visit|FV-1001"
URL = "/fhir/$process-message"


def _notification(event: str = "notification-admit", message: str = "m-1",
                  timestamp: str = "2024-03-05T08:30:00+00:00", **encounter: Any
                  ) -> dict[str, Any]:
    bundle = copy.deepcopy(ADMIT)
    bundle["identifier"]["value"] = f"urn:uuid:{message}"
    bundle["timestamp"] = timestamp
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = event
    bundle["entry"][1]["resource"].update(encounter)
    return bundle


def _send(client: TestClient, bundle: dict[str, Any]) -> Any:
    return client.post(URL, content=json.dumps(bundle),
                       headers={"Content-Type": "application/fhir+json"})


def _encounter(client: TestClient) -> dict[str, Any]:
    found = search(client, "Encounter", identifier=VISIT)
    assert len(found) == 1
    return found[0]


def test_admit_notification_is_stored_with_its_bundled_resources(client: TestClient) -> None:
    response = _send(client, _notification())
    assert response.status_code == 200, response.text
    assert response.json()["issue"][0]["severity"] == "information"
    encounter = _encounter(client)
    assert encounter["status"] == "in-progress"
    assert encounter["meta"]["source"].startswith("urn:gateway:inbound-message:")
    patient = read(client, encounter["subject"]["reference"])
    assert patient["identifier"][0]["value"] == "N100234"
    doctor = read(client, encounter["participant"][0]["individual"]["reference"])
    assert doctor["identifier"][0]["value"] == "1689012345"
    assert read(client, encounter["location"][0]["location"]["reference"])["name"] == \
        "4 West 412 B"
    assert read(client, encounter["serviceProvider"]["reference"])["name"] == "North Hospital"
    assert encounter["reasonReference"] == [{"display": "Heart failure"}]


def test_the_patient_is_the_one_known_from_hl7v2(client: TestClient) -> None:
    post(client, sample("north_a01_v25"))
    _send(client, _notification())
    assert len(search(client, "Patient", identifier="urn:hl7v2:authority:NORTH|N100234")) == 1
    assert len(search(client, "Practitioner",
                      identifier="http://hl7.org/fhir/sid/us-npi|1689012345")) == 1


def test_a_resent_notification_changes_nothing(client: TestClient) -> None:
    assert _send(client, _notification()).status_code == 200
    again = _send(client, _notification())
    assert again.status_code == 200
    history = client.get(f"/fhir/Encounter/{_encounter(client)['id']}/_history").json()
    assert history["total"] == 1


def test_discharge_then_a_late_admit_keeps_the_discharge(client: TestClient) -> None:
    discharge = _notification("notification-discharge", "m-2", "2024-03-09T11:00:00+00:00",
                              status="finished",
                              period={"start": "2024-03-05T08:15:00+00:00",
                                      "end": "2024-03-09T10:45:00+00:00"})
    assert _send(client, discharge).status_code == 200
    assert _send(client, _notification()).status_code == 200
    encounter = _encounter(client)
    assert encounter["status"] == "finished"
    assert encounter["period"]["end"] == "2024-03-09T10:45:00+00:00"


def test_transfer_updates_the_same_encounter(client: TestClient) -> None:
    _send(client, _notification())
    transfer = _notification("notification-transfer", "m-3", "2024-03-06T14:10:00+00:00")
    transfer["entry"][4]["resource"]["identifier"][0]["value"] = "ICU-2-A"
    transfer["entry"][4]["resource"]["name"] = "ICU 2 A"
    assert _send(client, transfer).status_code == 200
    encounter = _encounter(client)
    assert read(client, encounter["location"][0]["location"]["reference"])["name"] == "ICU 2 A"


@pytest.mark.parametrize(("change", "status"), [
    (lambda b: b.update(type="collection"), 400),
    (lambda b: b["entry"][0]["resource"]["eventCoding"].update(code="notification-birth"),
     400),
    (lambda b: b["entry"].pop(0), 400),
    (lambda b: b["entry"][1]["resource"].pop("identifier"), 422),
    (lambda b: b["entry"][0]["resource"].update(focus=[{"reference": "Patient/pat-1"}]), 422),
    (lambda b: b["entry"][1]["resource"].update(status="walking"), 400),
])
def test_bad_notifications_get_an_operation_outcome(client: TestClient, change: Any,
                                                    status: int) -> None:
    bundle = _notification()
    change(bundle)
    response = _send(client, bundle)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    stored = client.get("/hl7v2/messages").json()["messages"]
    assert [m["status"] for m in stored] in (["rejected"], ["error"])


def test_not_json_gets_400(client: TestClient) -> None:
    response = client.post(URL, content=b"{nope",
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "structure"


def test_it_is_a_fhir_endpoint_json_only(client: TestClient) -> None:
    response = client.post(URL, content=json.dumps(_notification()),
                           headers={"Content-Type": "application/fhir+json",
                                    "Accept": "application/fhir+xml"})
    assert response.status_code == 406
    xml = client.post(URL, content=b"<Bundle/>",
                      headers={"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415
