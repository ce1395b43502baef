"""The Encounter of a visit as the fold of its ADT events (gateway.coordination.encounter_fold):
pure, so each trigger's effect is checked without a database."""

from __future__ import annotations

from typing import Any

from gateway.coordination.encounter_fold import EncounterEvent, fold

VISIT = {"system": "urn:hl7v2:authority:NORTH", "value": "V1"}
IMP = {"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}


def _event(action: str, time: str, status: str | None, *, location: str | None = None,
           elements: dict[str, Any] | None = None) -> EncounterEvent:
    return EncounterEvent(action=action, time=time, status=status,
                          elements=elements if elements is not None else dict(IMP),
                          identifier=VISIT, subject="Patient/p1",
                          location=(f"Location/{location}", location) if location else None,
                          source=f"urn:test:{action}")


ADMIT = _event("admit", "2024-03-05T08:00:00+00:00", "in-progress", location="bed1")
TRANSFER = _event("transfer", "2024-03-06T08:00:00+00:00", "in-progress", location="icu")
DISCHARGE = _event("discharge", "2024-03-09T10:00:00+00:00", "finished", location="icu",
                   elements={**IMP, "hospitalization": {"dischargeDisposition": {"text": "snf"}}})


def _run(*events: EncounterEvent) -> dict[str, Any]:
    state = None
    for event in events:
        state = fold(state, event)
    assert state is not None
    return state


def test_admit_opens_period_and_location() -> None:
    encounter = _run(ADMIT)
    assert encounter["status"] == "in-progress"
    assert encounter["period"] == {"start": "2024-03-05T08:00:00+00:00"}
    assert encounter["location"] == [{"location": {"reference": "Location/bed1",
                                                   "display": "bed1"}, "status": "active",
                                      "period": {"start": "2024-03-05T08:00:00+00:00"}}]
    assert encounter["meta"] == {"source": "urn:test:admit"}


def test_transfer_keeps_location_history() -> None:
    locations = _run(ADMIT, TRANSFER)["location"]
    assert [(e["location"]["reference"], e["status"]) for e in locations] == [
        ("Location/bed1", "completed"), ("Location/icu", "active")]
    assert locations[0]["period"]["end"] == TRANSFER.time


def test_discharge_ends_period_and_locations() -> None:
    encounter = _run(ADMIT, TRANSFER, DISCHARGE)
    assert encounter["status"] == "finished"
    assert encounter["period"]["end"] == DISCHARGE.time
    assert all(e["status"] == "completed" for e in encounter["location"])
    assert encounter["hospitalization"]["dischargeDisposition"] == {"text": "snf"}


def test_cancel_transfer_reopens_the_previous_location() -> None:
    cancel = _event("cancel-transfer", "2024-03-06T09:00:00+00:00", "in-progress")
    locations = _run(ADMIT, TRANSFER, cancel)["location"]
    assert [(e["location"]["reference"], e["status"]) for e in locations] == [
        ("Location/bed1", "active")]
    assert "end" not in locations[0]["period"]


def test_cancel_discharge_reopens_the_visit() -> None:
    cancel = _event("cancel-discharge", "2024-03-09T12:00:00+00:00", "in-progress")
    encounter = _run(ADMIT, DISCHARGE, cancel)
    assert encounter["status"] == "in-progress"
    assert "end" not in encounter["period"]
    assert "hospitalization" not in encounter
    assert encounter["location"][-1]["status"] == "active"


def test_cancel_admit_marks_entered_in_error() -> None:
    cancel = _event("cancel-admit", "2024-03-05T09:00:00+00:00", "entered-in-error")
    assert _run(ADMIT, cancel)["status"] == "entered-in-error"


def test_update_without_status_keeps_status() -> None:
    update = _event("update", "2024-03-07T09:00:00+00:00", None, location="icu")
    assert _run(ADMIT, TRANSFER, update)["status"] == "in-progress"


def test_fold_does_not_modify_its_input() -> None:
    first = fold(None, ADMIT)
    snapshot = repr(first)
    fold(first, TRANSFER)
    assert repr(first) == snapshot
