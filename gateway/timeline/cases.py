"""The encounter-based measures as cases: one per denominator encounter, saying whether it
is in the numerator and why. Pure functions over one patient's Visits; definitions, and how
they differ from the HEDIS measures they follow, are in docs/measures.md.

Each case names its month (the bucket of the date that places it in the period), the
encounter behind it and the evidence (the readmission, the follow-up visit...), so every
figure can be traced back to encounters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.timeline.period import Period
from gateway.timeline.visits import Visit

READMISSION_DAYS = 30
FOLLOW_UP_WINDOWS = (7, 30)


@dataclass(frozen=True)
class Case:
    """One denominator encounter of one measure (count measures: every case is a hit)."""

    month: str
    encounter: str
    hit: bool = True
    evidence: dict[str, Any] = field(default_factory=dict)
    excluded: str | None = None


def visits_of_class(visits: list[Visit], period: Period, klass: str) -> list[Case]:
    """Encounters of ``klass`` that happened, by the month they started (ED visits: EMER;
    inpatient admissions: IMP)."""
    return [Case(month, v.reference) for v in visits
            if v.klass == klass and v.happened and v.start is not None
            and (month := period.month_of(v.start)) is not None]


def inpatient_discharges(visits: list[Visit], period: Period) -> list[tuple[str, Visit]]:
    """(month, stay) for inpatient stays discharged in the period, by discharge month."""
    return [(month, v) for v in visits if v.is_discharge(("IMP",))
            and v.end is not None and (month := period.month_of(v.end)) is not None]


def readmissions(visits: list[Visit], period: Period) -> list[Case]:
    """30-day all-cause readmission (close to HEDIS PCR): index stays discharged in the
    period; hit when an unplanned inpatient admission starts 1-30 days after discharge."""
    return _after_discharges(visits, period, READMISSION_DAYS, _is_unplanned_admission,
                             "readmission")


def follow_ups(visits: list[Visit], period: Period, days: int) -> list[Case]:
    """Follow-up within ``days`` (close to HEDIS TRC patient engagement / FUH): inpatient
    discharges in the period; hit when a finished ambulatory visit starts 1..days days
    after the discharge date."""
    return _after_discharges(visits, period, days, _is_ambulatory_visit, "visit")


def _after_discharges(visits: list[Visit], period: Period, days: int,
                      accept: Callable[[Visit], bool], label: str) -> list[Case]:
    """A case per inpatient discharge in the period (stays ended in death excluded), hit
    when a visit ``accept`` takes follows within ``days``; evidence names it as ``label``."""
    cases = []
    for month, stay in inpatient_discharges(visits, period):
        if stay.expired:
            cases.append(Case(month, stay.reference, False, excluded="died"))
            continue
        found = _first_after(stay, visits, days, accept)
        evidence = {label: found[0].reference, "days": found[1]} if found else {}
        cases.append(Case(month, stay.reference, found is not None, evidence))
    return cases


def _is_unplanned_admission(candidate: Visit) -> bool:
    return candidate.klass == "IMP" and candidate.happened and not candidate.planned


def _is_ambulatory_visit(candidate: Visit) -> bool:
    return candidate.klass == "AMB" and candidate.status == "finished"


def _first_after(stay: Visit, visits: list[Visit], days: int,
                 accept: Callable[[Visit], bool]) -> tuple[Visit, int] | None:
    """The earliest visit ``accept`` takes that starts 1..days calendar days after the
    stay's discharge date (a same-day start is a transfer, not a new event)."""
    assert stay.end is not None
    found = [(gap, v) for v in visits if v is not stay and v.start is not None and accept(v)
             and 1 <= (gap := (v.start - stay.end).days) <= days]
    if not found:
        return None
    gap, first = min(found, key=lambda pair: (pair[0], pair[1].reference))
    return first, gap
