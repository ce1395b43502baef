"""CarePlan versions as a readable diff: what the new version added, removed or changed.

Compared per version (R4 careplan.html): ``status``, ``intent``, ``title``, ``period``,
``goal`` and ``addresses`` (by reference), ``careTeam`` and ``activity`` (by its reference,
else its detail's code or description), including each inline activity's ``detail.status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.timeline import describe as d
from gateway.timeline.entry import NEUTRAL, WARNING, Entry
from gateway.timeline.sources import Version


def careplan_entries(versions: list[Version], names: d.Names) -> list[Entry]:
    """One entry per version of one CarePlan (oldest first)."""
    entries: list[Entry] = []
    previous: _Shape | None = None
    for version in versions:
        if version.deleted:
            entries.append(Entry(version.last_updated, "careplan.deleted", "Care plan deleted",
                                 version.reference, version.last_updated, WARNING))
            previous = None
            continue
        shape = _Shape.of(version.body, names)
        entries.append(_entry(previous, shape, version))
        previous = shape
    return entries


@dataclass(frozen=True)
class _Shape:
    """What the diff compares, read once per version."""

    body: dict[str, Any]
    refs: dict[str, dict[str, str]]
    activities: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, body: dict[str, Any], names: d.Names) -> _Shape:
        return cls(body, {key: _refs(body, key, names) for key in _REFERENCE_LISTS},
                   _activities(body, names))


_REFERENCE_LISTS = {"goal": "Goal", "addresses": "Problem", "careTeam": "Care team"}


def _entry(previous: _Shape | None, shape: _Shape, version: Version) -> Entry:
    body = shape.body
    title = body.get("title") or "Care plan"
    if previous is None:
        details = tuple(f"Goal: {n}" for n in shape.refs["goal"].values()) + tuple(
            f"Activity: {label}" for label, _ in shape.activities.values())
        return Entry(version.last_updated, "careplan.created",
                     f"{title} created ({body.get('status', 'unknown')})", version.reference,
                     version.last_updated, NEUTRAL, details)
    changes = _diff(previous, shape)
    summary = f"{title} updated: " + "; ".join(_counts(changes)) if changes else \
        f"{title} updated (no change to its goals, activities or status)"
    tone = WARNING if body.get("status") != previous.body.get("status") else NEUTRAL
    return Entry(version.last_updated, "careplan.changed", summary, version.reference,
                 version.last_updated, tone, tuple(changes))


def diff(old: dict[str, Any], new: dict[str, Any], names: d.Names) -> list[str]:
    """Lines describing how ``new`` differs from ``old``."""
    return _diff(_Shape.of(old, names), _Shape.of(new, names))


def _diff(old_shape: _Shape, new_shape: _Shape) -> list[str]:
    old, new = old_shape.body, new_shape.body
    lines = [f"{label} changed: {old.get(key) or '-'} → {new.get(key) or '-'}"
             for key, label in (("status", "Status"), ("intent", "Intent"), ("title", "Title"))
             if old.get(key) != new.get(key)]
    if (old.get("period") or {}) != (new.get("period") or {}):
        lines.append(f"Period changed: {_period(old)} → {_period(new)}")
    for key, label in _REFERENCE_LISTS.items():
        lines += _set_changes(label, old_shape.refs[key], new_shape.refs[key])
    lines += _activity_changes(old_shape.activities, new_shape.activities)
    return lines


def _set_changes(label: str, old: dict[str, str], new: dict[str, str]) -> list[str]:
    return ([f"{label} added: {new[k]}" for k in new if k not in old]
            + [f"{label} removed: {old[k]}" for k in old if k not in new])


def _activity_changes(old: dict[str, tuple[str, str]],
                      new: dict[str, tuple[str, str]]) -> list[str]:
    lines = [f"Activity added: {label}" for k, (label, _) in new.items() if k not in old]
    lines += [f"Activity removed: {label}" for k, (label, _) in old.items() if k not in new]
    lines += [f"Activity {label}: {old[k][1] or '-'} → {status or '-'}"
              for k, (label, status) in new.items() if k in old and old[k][1] != status]
    return lines


def _counts(changes: list[str]) -> list[str]:
    """A short summary: status changes spelled out, the rest counted by kind."""
    out = [c for c in changes if c.startswith("Status changed")]
    counted: dict[str, int] = {}
    for change in changes:
        if not change.startswith("Status changed"):
            head = change.split(":", 1)[0].lower()
            counted[head] = counted.get(head, 0) + 1
    out += [f"{n} {_plural(head)}" if n > 1 else head for head, n in counted.items()]
    return out


def _plural(head: str) -> str:
    """"activity added" -> "activities added"."""
    noun, _, rest = head.partition(" ")
    noun = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{noun} {rest}".strip()


def _refs(body: dict[str, Any], key: str, names: d.Names) -> dict[str, str]:
    """Reference -> readable name, in order, for a list of References."""
    out: dict[str, str] = {}
    for item in body.get(key) or []:
        ref = item.get("reference") or d.reference(item)
        out[ref] = d.reference(item, names) or ref
    return out


def _activities(body: dict[str, Any], names: d.Names) -> dict[str, tuple[str, str]]:
    """Activity key -> (label, status). Referenced activities are keyed by reference."""
    out: dict[str, tuple[str, str]] = {}
    for index, activity in enumerate(body.get("activity") or []):
        ref = activity.get("reference")
        if isinstance(ref, dict):
            key = ref.get("reference") or f"#{index}"
            out[key] = (d.reference(ref, names) or key, "")
            continue
        detail = activity.get("detail") or {}
        label = d.concept(detail.get("code")) or detail.get("description") or f"#{index + 1}"
        due = d.day((detail.get("scheduledPeriod") or {}).get("end"))
        key = f"id:{activity['id']}" if activity.get("id") else f"detail:{label}"
        out[key] = (label + (f" (due {due})" if due else ""),
                                  str(detail.get("status") or ""))
    return out


def _period(body: dict[str, Any]) -> str:
    period = body.get("period") or {}
    return f"{d.day(period.get('start')) or '…'} to {d.day(period.get('end')) or '…'}"
