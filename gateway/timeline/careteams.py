"""CareTeam versions as members joining and leaving (R4 careteam.html).

A member joins when it first appears in ``participant`` (at its ``period.start`` when given)
and leaves when it is removed or its ``period.end`` is set (at that end, as the roster import
records a member missing from a re-sent roster: gateway/coordination/plans.py).
"""

from __future__ import annotations

from typing import Any

from gateway.timeline import describe as d
from gateway.timeline.entry import GOOD, NEUTRAL, Entry
from gateway.timeline.sources import Version

Members = dict[str, dict[str, Any]]  # member reference -> participant


def careteam_entries(versions: list[Version], names: d.Names) -> list[Entry]:
    """Joins and leaves across one CareTeam's versions (oldest first)."""
    entries: list[Entry] = []
    before: Members = {}
    for version in versions:
        now = {} if version.deleted else members(version.body)
        team = version.body.get("name") or "the care team"
        for key, participant in now.items():
            if key not in before and not _ended(participant):
                entries.append(_change(version, "careteam.joined", participant, names, team))
            elif _ended(participant) and not _ended(before.get(key, {})):
                entries.append(_change(version, "careteam.left", participant, names, team))
        entries += [_change(version, "careteam.left", participant, names, team)
                    for key, participant in before.items()
                    if key not in now and not _ended(participant)]
        before = now
    return entries


def members(body: dict[str, Any]) -> Members:
    """Participants by member reference (or display, for members without a reference)."""
    out: Members = {}
    for participant in body.get("participant") or []:
        member = participant.get("member") or {}
        key = member.get("reference") or member.get("display")
        if key:
            out[key] = participant
    return out


def member_label(participant: dict[str, Any], names: d.Names) -> str:
    """"Ana Reyes (care manager)"."""
    who = d.reference(participant.get("member"), names) or "someone"
    role = d.concept(participant.get("role"))
    return f"{who} ({role})" if role else who


def _ended(participant: dict[str, Any]) -> bool:
    return bool((participant.get("period") or {}).get("end"))


def _change(version: Version, kind: str, participant: dict[str, Any], names: d.Names,
            team: str) -> Entry:
    joined = kind == "careteam.joined"
    period = participant.get("period") or {}
    when = d.epoch(period.get("start" if joined else "end")) or version.last_updated
    text = f"{member_label(participant, names)} {'joined' if joined else 'left'} {team}"
    return Entry(when, kind, text, version.reference, version.last_updated,
                 GOOD if joined else NEUTRAL)
