"""Encounters reduced to what the measures need (R4 encounter.html).

``class`` is the v3 ActCode (``EMER``, ``IMP``, ``AMB``, ``OBSENC``...); the visit's dates
are the calendar dates written in ``period.start`` / ``period.end`` (the facility's local
date, as HEDIS counts days); ``discharged_at`` is the instant of ``period.end`` for hour
figures. An admission is planned when ``priority`` is v3 ActPriority ``EL`` (elective, what
HL7 v2 admission type C maps to); a stay ended in death when
``hospitalization.dischargeDisposition`` is ``exp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.fhir.dates import parse_range

#: Statuses of encounters that did not happen (or not yet): never counted.
NOT_HAPPENED = frozenset({"planned", "cancelled", "entered-in-error"})
#: Classes whose end is a discharge that care teams are told about (issue 7 workflows).
DISCHARGE_CLASSES = ("IMP", "EMER", "OBSENC")


@dataclass(frozen=True)
class Visit:
    reference: str
    patient: str
    klass: str | None
    status: str
    start: date | None
    end: date | None
    discharged_at: float | None
    planned: bool
    expired: bool

    @property
    def happened(self) -> bool:
        return self.status not in NOT_HAPPENED

    def is_discharge(self, classes: tuple[str, ...]) -> bool:
        """A finished stay of one of ``classes`` with an end date."""
        return self.status == "finished" and self.klass in classes and self.end is not None


def visit(encounter: dict[str, Any], patient: str) -> Visit:
    """The Visit of one stored Encounter body."""
    period = encounter.get("period") or {}
    end_text = period.get("end")
    end_range = parse_range(end_text) if isinstance(end_text, str) else None
    return Visit(
        reference=f"Encounter/{encounter['id']}",
        patient=patient,
        klass=(encounter.get("class") or {}).get("code"),
        status=str(encounter.get("status", "")),
        start=_date(period.get("start")),
        end=_date(end_text),
        discharged_at=end_range[0] if end_range else None,
        planned=_has_code(encounter.get("priority"), "EL"),
        expired=_has_code((encounter.get("hospitalization") or {})
                          .get("dischargeDisposition"), "exp"),
    )


def _date(value: Any) -> date | None:
    """The calendar date a FHIR date/dateTime names (its first ten characters)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _has_code(concept: Any, code: str) -> bool:
    codings = concept.get("coding") or [] if isinstance(concept, dict) else []
    return any(isinstance(c, dict) and c.get("code") == code for c in codings)
