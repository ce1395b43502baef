"""Who a measures report is about: a panel of patients.

A panel is one of: the patients of an organization (a CareTeam of theirs names the
Organization as a participant's ``member`` or ``onBehalfOf``, or as
``managingOrganization``), of a coordinator (a participant ``member`` is the Practitioner),
one patient, or, with no parameter, every patient with a CareTeam. A team counts when its
status is not ``entered-in-error`` / ``proposed`` and its ``period`` (and, for
organization and practitioner panels, the matching participant's ``period``) overlaps the
reporting period (R4 careteam.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import InvalidRequest, NotFound
from gateway.fhir.dates import period_range
from gateway.fhir.references import parse_reference
from gateway.store import careteams, query
from gateway.store.access import visible
from gateway.store.repository import Repository
from gateway.timeline.period import Period

_NOT_TEAMS = frozenset({"entered-in-error", "proposed"})


@dataclass(frozen=True)
class Panel:
    """The panel asked for: ``kind`` is organization, practitioner, patient or all."""

    kind: str
    reference: str | None = None

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, **({"reference": self.reference} if self.reference else {})}


def parse_panel(organization: str | None, practitioner: str | None,
                patient: str | None) -> Panel:
    """At most one of the panel parameters, each ``Type/id`` or a bare id."""
    given = [(name, value) for name, value in (("organization", organization),
             ("practitioner", practitioner), ("patient", patient)) if value]
    if len(given) > 1:
        raise InvalidRequest("Give one of organization, practitioner or patient.",
                             expression=[given[1][0]])
    if not given:
        return Panel("all")
    name, value = given[0]
    expected = name.capitalize()
    parsed = parse_reference(value if "/" in value else f"{expected}/{value}")
    if parsed is None or parsed.type != expected:
        raise InvalidRequest(f"{name} must be {expected}/id or an id, not {value!r}.",
                             expression=[name])
    return Panel(name, f"{expected}/{parsed.id}")


def patients(repo: Repository, panel: Panel, period: Period) -> list[str]:
    """The panel's patients (``Patient/id``), sorted. Under a restricted access
    (store/access.py) only the patients the reader may see: the CareTeam search leaves the
    others' teams out, and one patient the reader may not see is unknown (404)."""
    if panel.kind == "patient":
        assert panel.reference is not None
        stored = careteams.read_reference(repo, panel.reference)
        if stored is None or not visible(repo.conn, stored.rid, query.execute):
            raise NotFound(f"{panel.reference} is not a known patient.",
                           expression=["patient"])
        return [panel.reference]
    window = _window(period)
    found = set()
    for team in careteams.search_all(repo, "CareTeam", []):
        subject = _local((team.get("subject") or {}).get("reference"))
        if subject and subject.startswith("Patient/") and _counts(team, panel, window):
            found.add(subject)
    return sorted(found)


def _window(period: Period) -> tuple[float, float]:
    low = datetime(period.first.year, period.first.month, 1, tzinfo=UTC).timestamp()
    high = datetime(period.end.year, period.end.month, 1, tzinfo=UTC).timestamp()
    return low, high


def _overlaps(node: dict[str, Any], window: tuple[float, float]) -> bool:
    span = period_range(node.get("period") or {})
    return span is None or (span[0] < window[1] and span[1] >= window[0])


def _counts(team: dict[str, Any], panel: Panel, window: tuple[float, float]) -> bool:
    if team.get("status") in _NOT_TEAMS or not _overlaps(team, window):
        return False
    if panel.kind == "all":
        return True
    if panel.kind == "organization" and panel.reference in {
            _local(o.get("reference")) for o in team.get("managingOrganization") or []}:
        return True
    return any(_overlaps(p, window) and panel.reference in _parties(p, panel.kind)
               for p in team.get("participant") or [])


def _parties(participant: dict[str, Any], kind: str) -> set[str | None]:
    parties = {_local((participant.get("member") or {}).get("reference"))}
    if kind == "organization":
        parties.add(_local((participant.get("onBehalfOf") or {}).get("reference")))
    return parties


def _local(reference: Any) -> str | None:
    parsed = parse_reference(reference) if isinstance(reference, str) else None
    return f"{parsed.type}/{parsed.id}" if parsed else None
