"""Task versions as follow-ups created, completed, cancelled and overdue (R4 task.html).

A Task's due date is ``restriction.period.end`` (as the plan mapping and the discharge
workflows write it). A Task is overdue when a version sets ``businessStatus`` to ``overdue``
(the workflows flag it), or, for a Task still open now, when its due date has passed without
such a flag: then the entry is placed at the due date.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.timeline import describe as d
from gateway.timeline.entry import BAD, GOOD, NEUTRAL, WARNING, Entry
from gateway.timeline.sources import Version

OPEN = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")
_ENDINGS = {"completed": ("task.completed", GOOD, "completed"),
            "cancelled": ("task.cancelled", NEUTRAL, "cancelled"),
            "failed": ("task.failed", BAD, "failed"),
            "rejected": ("task.rejected", NEUTRAL, "rejected")}


def label(body: dict[str, Any]) -> str:
    """What the task is: its description, else its code."""
    return str(body.get("description") or d.concept(body.get("code")) or "Task")


def due(body: dict[str, Any]) -> str | None:
    return ((body.get("restriction") or {}).get("period") or {}).get("end")


def flagged_overdue(body: dict[str, Any]) -> bool:
    return any(c.get("code") == "overdue"
               for c in (body.get("businessStatus") or {}).get("coding") or []) or \
        (body.get("businessStatus") or {}).get("text") == "overdue"


def is_overdue(body: dict[str, Any], now: float | None = None) -> bool:
    """Open and flagged overdue, or open and past its due date."""
    if body.get("status") not in OPEN:
        return False
    when = d.parse_end(due(body))
    return flagged_overdue(body) or (when is not None and when < (now or time.time()))


def task_entries(versions: list[Version], names: d.Names, now: float) -> list[Entry]:
    """The entries of one Task's versions (oldest first)."""
    entries: list[Entry] = []
    previous: dict[str, Any] = {}
    for version in versions:
        body = version.body
        if version.deleted:
            previous = {}
            continue
        entries += _changes(previous, version, names)
        previous = body
    if previous and is_overdue(previous, now) and not flagged_overdue(previous):
        last = versions[-1]
        when = d.parse_end(due(previous)) or last.last_updated
        entries.append(Entry(when, "task.overdue", f"Overdue: {label(previous)}"
                             + _owner(previous, names), last.reference, last.last_updated, BAD,
                             (f"due {d.day(due(previous))}",)))
    return entries


def _changes(previous: dict[str, Any], version: Version, names: d.Names) -> list[Entry]:
    body = version.body
    status = body.get("status")
    out = []
    if not previous:
        text = f"Task created: {label(body)}" + _owner(body, names)
        if due(body):
            text += f", due {d.day(due(body))}"
        out.append(_entry(version, "task.created", d.epoch(body.get("authoredOn")),
                          WARNING if status in OPEN else NEUTRAL, text))
    if status != previous.get("status") and status in _ENDINGS:
        kind, tone, word = _ENDINGS[status]
        when = d.epoch((body.get("executionPeriod") or {}).get("end"))
        out.append(_entry(version, kind, when, tone, f"Task {word}: {label(body)}"
                          + _owner(body, names)))
    if flagged_overdue(body) and not flagged_overdue(previous) and status in OPEN:
        out.append(_entry(version, "task.overdue", None, BAD, f"Overdue: {label(body)}"
                          + _owner(body, names)))
    return out


def _owner(body: dict[str, Any], names: d.Names) -> str:
    owner = d.reference(body.get("owner"), names)
    return f" ({owner})" if owner else ""


def _entry(version: Version, kind: str, when: float | None, tone: str, text: str) -> Entry:
    return Entry(when or version.last_updated, kind, text, version.reference,
                 version.last_updated, tone)
