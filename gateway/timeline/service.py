"""A patient's timeline: every source read once, turned into entries, newest first, paged.

Paging is by keyset: ``before`` is the cursor of the last entry of the previous page, so a
page stays stable while new events arrive; ``since`` keeps only entries at or after a time.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InvalidRequest, NotFound
from gateway.fhir.references import parse_reference
from gateway.store import query
from gateway.store.access import restricted, visible
from gateway.store.db import Database
from gateway.timeline import describe as d
from gateway.timeline.careplans import careplan_entries
from gateway.timeline.careteams import careteam_entries
from gateway.timeline.deliveries import delivery_entries
from gateway.timeline.encounters import encounter_entries, message_id
from gateway.timeline.entry import Entry
from gateway.timeline.sources import (
    Version,
    current_bodies,
    message_times,
    patient_deliveries,
    patient_versions,
    reading,
)
from gateway.timeline.tasks import due, label, task_entries

NAMED_TYPES = ("Organization", "Location", "Practitioner", "PractitionerRole", "RelatedPerson",
               "Goal", "Condition", "CareTeam", "Endpoint", "Device", "Patient")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Timeline:
    """One page of a patient's timeline."""

    patient: str
    entries: list[Entry]
    total: int
    next_cursor: str | None

    def json(self) -> dict[str, Any]:
        return {"patient": self.patient, "total": self.total,
                "entries": [entry.json() for entry in self.entries],
                "next": self.next_cursor}


@dataclass(frozen=True)
class PatientData:
    """Everything read for one patient: versions by ``Type/id``, names, entries."""

    versions: dict[str, list[Version]]
    names: d.Names
    entries: list[Entry]


def require_patient(db: Database, patient_id: str) -> dict[str, Any]:
    """The patient's current body; NotFound (404) or Gone (410) otherwise. A patient the
    reader may not see (store/access.py: another organization's) is NotFound too, so the
    timeline and the patient page do not reveal that it exists."""
    row = db.reader.current("Patient", patient_id)
    if restricted() is not None:
        with reading(db) as conn:
            if not visible(conn, row[0], query.execute):
                raise NotFound(f"Patient/{patient_id} is not known.")
    return orjson.loads(row[4])


def patient_timeline(db: Database, patient_id: str, *, since: str | None = None,
                     before: str | None = None, limit: int = 100) -> Timeline:
    """A page of the timeline, newest first (``limit`` 1-1000)."""
    require_patient(db, patient_id)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.", expression=["limit"])
    low = _since(since)
    cursor = decode_cursor(before) if before else None
    entries = [e for e in load(db, patient_id).entries if e.time >= low]
    total = len(entries)
    if cursor is not None:
        entries = [e for e in entries if e.key < cursor]
    page = entries[:limit]
    more = len(entries) > limit
    return Timeline(f"Patient/{patient_id}", page, total,
                    encode_cursor(page[-1].key) if more else None)


def load(db: Database, patient_id: str, now: float | None = None) -> PatientData:
    """Read every source for the patient (one query each) and build all entries."""
    now = now or time.time()
    with reading(db) as conn:
        versions = patient_versions(conn, patient_id)
        deliveries = patient_deliveries(conn, patient_id)
        messages = message_times(conn, sorted({
            m for key, vs in versions.items() if key.startswith("Encounter/")
            for m in (message_id(v) for v in vs) if m is not None}))
        names = _names(conn, versions, [x.recipient for x in deliveries])
    entries: list[Entry] = []
    for key, history in versions.items():
        entries += _entries_of(key.split("/", 1)[0], history, names, messages, now)
    entries += delivery_entries(deliveries, names)
    entries.sort(key=lambda e: e.key, reverse=True)
    return PatientData(versions, names, entries)


def _entries_of(resource_type: str, history: list[Version], names: d.Names,
                messages: dict[int, tuple[str | None, float | None]],
                now: float) -> list[Entry]:
    if resource_type == "Encounter":
        return encounter_entries(history, names, messages)
    if resource_type == "CarePlan":
        return careplan_entries(history, names)
    if resource_type == "CareTeam":
        return careteam_entries(history, names)
    return task_entries(history, names, now)


def _names(conn: Any, versions: dict[str, list[Version]], extra: list[str]) -> d.Names:
    """Display names of everything the versions refer to: one query per referenced type.
    Tasks are named from their own latest version (already read)."""
    wanted: dict[str, set[str]] = {}
    for ref in [*extra, *_referenced(versions)]:
        parsed = parse_reference(ref)
        if parsed is not None and parsed.type in NAMED_TYPES:
            wanted.setdefault(parsed.type, set()).add(parsed.id)
    names: d.Names = {}
    for resource_type, ids in wanted.items():
        for id_, body in current_bodies(conn, resource_type, sorted(ids)).items():
            names[f"{resource_type}/{id_}"] = d.resource_name(body)
    for key, history in versions.items():
        if key.startswith("Task/") and not history[-1].deleted:
            body = history[-1].body
            names[key] = label(body) + (f" (due {d.day(due(body))})" if due(body) else "")
    return names


# Where each timeline type names the people, places and things its summaries mention.
_NAMED_PATHS = {"Encounter": (("serviceProvider",), ("location", "location")),
                "CarePlan": (("goal",), ("addresses",), ("careTeam",)),
                "CareTeam": (("participant", "member"),),
                "Task": (("owner",),)}


def _referenced(versions: dict[str, list[Version]]) -> set[str]:
    """References the summaries name, taken from the elements they read (not a walk over
    every element of every version)."""
    refs: set[str] = set()
    for key, history in versions.items():
        paths = _NAMED_PATHS[key.split("/", 1)[0]]
        for version in history:
            for path in paths:
                refs.update(_references_at(version.body, path))
    return refs


def _references_at(node: Any, path: tuple[str, ...]) -> list[str]:
    for step in path:
        items = node if isinstance(node, list) else [node]
        node = [v for item in items if isinstance(item, dict)
                for v in ([item[step]] if isinstance(item.get(step), dict)
                          else item.get(step) or [])]
    return [n["reference"] for n in node if isinstance(n.get("reference"), str)
            and not n.get("display")]


def _since(value: str | None) -> float:
    if value is None:
        return float("-inf")
    low = d.epoch(value)
    if low is None:
        raise InvalidRequest(f"since {value!r} is not a FHIR date or dateTime.",
                             expression=["since"])
    return low


def encode_cursor(key: tuple[float, str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[float, str, str]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        when, ref, kind = orjson.loads(raw)
        return float(when), str(ref), str(kind)
    except (ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise InvalidRequest(f"before {value!r} is not a cursor this server issued.",
                             expression=["before"]) from error
