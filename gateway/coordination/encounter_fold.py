"""Apply one ADT event to an Encounter's state: a pure function, folded in event-time order.

The Encounter of a visit is the fold of its events sorted by event time (EVN-2 / MSH-7), so a
late message (an A01 after its A03) is applied where it belongs and never regresses a newer
state. Semantics follow the HL7 v2-to-FHIR ADT maps and HL7 v2.5 chapter 3 trigger events:
A02 closes the current location and opens the new one (Encounter.location history), A03 ends
the period, A11 marks the visit entered-in-error, A12 undoes the last transfer, A13 reopens a
discharged visit (http://hl7.org/fhir/R4/encounter.html#statemachine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


@dataclass
class EncounterEvent:
    """One ADT event with its references already resolved to stored resources."""

    action: str
    time: str | None
    status: str | None
    elements: dict[str, Any]
    identifier: dict[str, Any]
    subject: str
    location: tuple[str, str] | None = None  # (reference, display)
    participants: list[tuple[str, str, str]] = field(default_factory=list)  # role, ref, name
    service_provider: str | None = None
    source: str | None = None


def fold(state: dict[str, Any] | None, event: EncounterEvent) -> dict[str, Any]:
    """The Encounter after ``event``; ``state`` is not modified."""
    encounter = _copy(state) if state else {
        "resourceType": "Encounter", "identifier": [event.identifier], "status": "unknown"}
    _merge(encounter, event.elements)
    encounter["subject"] = {"reference": event.subject}
    if event.service_provider:
        encounter["serviceProvider"] = {"reference": event.service_provider}
    if event.participants:
        encounter["participant"] = [_participant(*p) for p in event.participants]
    _ACTIONS.get(event.action, _update)(encounter, event)
    if event.status:
        encounter["status"] = event.status
    if event.source:
        encounter["meta"] = {**(encounter.get("meta") or {}), "source": event.source}
    return encounter


def _merge(target: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and key != "class":
            _merge(target[key], value)
        else:
            target[key] = _copy(value)


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (through orjson: several times cheaper than
    copy.deepcopy, and the state is JSON by construction)."""
    return orjson.loads(orjson.dumps(value))


def _participant(role: str, reference: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": [{"coding": [{"system": PARTICIPATION, "code": role}]}],
        "individual": {"reference": reference}}
    if name:
        entry["individual"]["display"] = name
    return entry


def _admit(encounter: dict[str, Any], event: EncounterEvent) -> None:
    period = encounter.setdefault("period", {})
    if event.time and "start" not in period:
        period["start"] = event.time
    _arrive(encounter, event, "active")


def _preadmit(encounter: dict[str, Any], event: EncounterEvent) -> None:
    _arrive(encounter, event, "planned")


def _update(encounter: dict[str, Any], event: EncounterEvent) -> None:
    if not _active(encounter):
        _arrive(encounter, event, "active")
    if not encounter.get("period"):
        encounter.pop("period", None)


def _transfer(encounter: dict[str, Any], event: EncounterEvent) -> None:
    """A02: the current location is closed at the event time and the new one opened."""
    if event.location is None:
        return
    current = _active(encounter)
    if current is not None and current["location"]["reference"] == event.location[0]:
        return
    if current is not None:
        current["status"] = "completed"
        if event.time:
            current.setdefault("period", {})["end"] = event.time
    _add_location(encounter, event, "active")


def _discharge(encounter: dict[str, Any], event: EncounterEvent) -> None:
    period = encounter.setdefault("period", {})
    if event.time and "end" not in event.elements.get("period", {}):
        period["end"] = event.time
    if not _active(encounter):
        _arrive(encounter, event, "active")
    for entry in encounter.get("location") or []:
        if entry.get("status") in ("active", "planned"):
            entry["status"] = "completed"
            if period.get("end"):
                entry.setdefault("period", {})["end"] = period["end"]


def _cancel_transfer(encounter: dict[str, Any], event: EncounterEvent) -> None:
    """A12: drop the location the cancelled transfer opened; reopen the one it closed."""
    locations = encounter.get("location") or []
    if len(locations) < 2 or locations[-1].get("status") != "active":
        return
    locations.pop()
    previous = locations[-1]
    previous["status"] = "active"
    previous.get("period", {}).pop("end", None)


def _cancel_discharge(encounter: dict[str, Any], event: EncounterEvent) -> None:
    """A13: the visit is open again: no end, no discharge disposition, last bed active."""
    encounter.get("period", {}).pop("end", None)
    hospitalization = encounter.get("hospitalization") or {}
    hospitalization.pop("dischargeDisposition", None)
    if not hospitalization:
        encounter.pop("hospitalization", None)
    locations = encounter.get("location") or []
    if locations:
        locations[-1]["status"] = "active"
        locations[-1].get("period", {}).pop("end", None)


def _arrive(encounter: dict[str, Any], event: EncounterEvent, status: str) -> None:
    if event.location is None:
        return
    current = _active(encounter)
    if current is not None and current["location"]["reference"] == event.location[0]:
        current["status"] = status
        return
    if current is not None:
        current["status"] = "completed"
    _add_location(encounter, event, status)


def _add_location(encounter: dict[str, Any], event: EncounterEvent, status: str) -> None:
    assert event.location is not None
    reference, display = event.location
    entry: dict[str, Any] = {"location": {"reference": reference, "display": display},
                             "status": status}
    if event.time and status == "active":
        entry["period"] = {"start": event.time}
    encounter.setdefault("location", []).append(entry)


def _active(encounter: dict[str, Any]) -> dict[str, Any] | None:
    for entry in reversed(encounter.get("location") or []):
        if entry.get("status") in ("active", "planned"):
            return entry
    return None


def _noop(encounter: dict[str, Any], event: EncounterEvent) -> None:
    """A11 cancel admit: only the status changes (ConceptMap: entered-in-error)."""


_ACTIONS = {
    "admit": _admit, "register": _admit, "preadmit": _preadmit, "transfer": _transfer,
    "discharge": _discharge, "cancel-admit": _noop, "cancel-transfer": _cancel_transfer,
    "cancel-discharge": _cancel_discharge, "change-class": _update, "update": _update,
}
