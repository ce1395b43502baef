"""Encounter versions as admissions, transfers, discharges and visits, plus conflicts.

The transitions follow the Encounter state machine (R4 encounter.html#statemachine) as the ADT
fold writes it (gateway/coordination/encounter_fold.py): ``in-progress`` is an admission,
a new active ``Encounter.location`` while in progress a transfer, ``finished`` a discharge,
``entered-in-error`` a cancelled visit (A11), ``finished`` back to ``in-progress`` a cancelled
discharge (A13).

Conflicts: a version written from an ADT message whose event time is older than that of the
message behind the previous version means the message arrived out of order; the gateway
rebuilt the Encounter from the visit's messages in event-time order (coordination/adt.py).
The timeline shows this as a ``conflict.out-of-order`` entry, because the record a partner
received earlier was temporarily different from the final one.
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.dates import to_instant
from gateway.timeline import describe as d
from gateway.timeline.entry import BAD, GOOD, NEUTRAL, WARNING, Entry
from gateway.timeline.sources import Version

MESSAGE_SOURCE = "urn:gateway:inbound-message:"
_CLASSES = {"IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
            "EMER": "emergency", "OBSENC": "observation", "AMB": "ambulatory",
            "VR": "virtual", "HH": "home health", "SS": "short stay", "PRENC": "pre-admission"}
_VISITS = ("AMB", "VR", "HH")
Messages = dict[int, tuple[str | None, float | None]]


def message_id(version: Version) -> int | None:
    """The stored inbound message a version was written from (meta.source), if any."""
    source = (version.body.get("meta") or {}).get("source") or ""
    tail = source.removeprefix(MESSAGE_SOURCE)
    return int(tail) if source.startswith(MESSAGE_SOURCE) and tail.isdigit() else None


def encounter_entries(versions: list[Version], names: d.Names,
                      messages: Messages) -> list[Entry]:
    """The entries of one Encounter's version history (oldest version first)."""
    entries: list[Entry] = []
    previous: Version | None = None
    for version in versions:
        if version.deleted:
            previous = None
            continue
        entries += _transitions(previous, version, names)
        conflict = _conflict(previous, version, messages)
        if conflict is not None:
            entries.append(conflict)
        previous = version
    return entries


def _transitions(previous: Version | None, version: Version, names: d.Names) -> list[Entry]:
    body = version.body
    before = previous.body.get("status") if previous else None
    status = body.get("status")
    kind_of = (body.get("class") or {}).get("code", "")
    if status == before and status == "in-progress":
        return _transfer(previous, version, names)
    if status == before:
        return []
    if status == "finished" and kind_of in _VISITS:
        return [_entry(version, "encounter.visit", _start(version), GOOD,
                       f"{_label(body)} visit at {_facility(body, names)}")]
    if status == "finished":
        out = [] if before == "in-progress" else [_admitted(version, names)]
        return [*out, _discharged(version, names)]
    if status == "in-progress" and before == "finished":
        return [_entry(version, "encounter.discharge-cancelled", version.last_updated, WARNING,
                       f"Discharge from {_facility(body, names)} cancelled; visit open again")]
    if status == "in-progress":
        return [_admitted(version, names)]
    if status in ("arrived", "triaged"):
        return [_entry(version, "encounter.arrived", _start(version), WARNING,
                       f"Arrived ({_label(body)}) at {_facility(body, names)}")]
    if status == "entered-in-error":
        return [_entry(version, "encounter.cancelled", version.last_updated, WARNING,
                       f"Visit at {_facility(body, names)} cancelled (entered in error)")]
    return []


def _admitted(version: Version, names: d.Names) -> Entry:
    body = version.body
    where = _facility(body, names)
    ward = _ward(body, names)
    label = _label(body)
    text = (f"Emergency visit at {where}" if label == "emergency"
            else f"Admitted ({label}) to {where}")
    return _entry(version, "encounter.admitted", _start(version), WARNING,
                  text + (f", {ward}" if ward else ""))


def _discharged(version: Version, names: d.Names) -> Entry:
    body = version.body
    hospitalization = body.get("hospitalization") or {}
    disposition = d.concept(hospitalization.get("dischargeDisposition"))
    text = f"Discharged from {_facility(body, names)} ({_label(body)})"
    if disposition:
        text += f" to {disposition}"
    end = d.epoch((body.get("period") or {}).get("end"))
    return _entry(version, "encounter.discharged", end or version.last_updated, BAD, text)


def _transfer(previous: Version | None, version: Version, names: d.Names) -> list[Entry]:
    old = _active_location(previous.body) if previous else None
    new = _active_location(version.body)
    if new is None or new.get("location") == (old or {}).get("location"):
        return []
    when = d.epoch((new.get("period") or {}).get("start")) or version.last_updated
    text = f"Transferred to {d.reference(new.get('location'), names)}"
    if old is not None:
        text += f" from {d.reference(old.get('location'), names)}"
    return [_entry(version, "encounter.transferred", when, NEUTRAL, text)]


def _conflict(previous: Version | None, version: Version, messages: Messages) -> Entry | None:
    if previous is None:
        return None
    late, earlier = message_id(version), message_id(previous)
    if late is None or earlier is None or late not in messages or earlier not in messages:
        return None
    (late_type, late_time), (earlier_type, earlier_time) = messages[late], messages[earlier]
    if late_time is None or earlier_time is None or late_time >= earlier_time:
        return None
    return _entry(version, "conflict.out-of-order", version.last_updated, WARNING,
                  f"{late_type or 'ADT message'} dated {to_instant(late_time)[:16]} arrived after "
                  f"{earlier_type or 'a later message'} dated {to_instant(earlier_time)[:16]}; "
                  "the visit was rebuilt in event-time order",
                  (f"message {late} applied after message {earlier}",))


def _entry(version: Version, kind: str, when: float, tone: str, summary: str,
           details: tuple[str, ...] = ()) -> Entry:
    return Entry(when, kind, summary, version.reference, version.last_updated, tone, details)


def _start(version: Version) -> float:
    return d.epoch((version.body.get("period") or {}).get("start")) or version.last_updated


def _label(body: dict[str, Any]) -> str:
    code = (body.get("class") or {}).get("code", "")
    return _CLASSES.get(code, (body.get("class") or {}).get("display") or "encounter")


def _facility(body: dict[str, Any], names: d.Names) -> str:
    provider = d.reference(body.get("serviceProvider"), names)
    if provider:
        return provider
    location = _active_location(body) or {}
    return d.reference(location.get("location"), names) or "an unnamed facility"


def _ward(body: dict[str, Any], names: d.Names) -> str:
    location = _active_location(body)
    return d.reference(location.get("location"), names) if location else ""


def _active_location(body: dict[str, Any]) -> dict[str, Any] | None:
    """The location the patient is at: the last one not completed (A02 closes the old)."""
    current = [loc for loc in body.get("location") or []
               if loc.get("status") != "completed" and not (loc.get("period") or {}).get("end")]
    return current[-1] if current else None
