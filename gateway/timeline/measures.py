"""Transition-of-care measures for a panel and each of its patients, per month of a period.

Read-only over the store. Definitions (numerator, denominator, exclusions, the HEDIS
measure each is closest to and what differs) are in docs/measures.md. Every figure lists
the encounters behind it: ``denominator_encounters`` and ``numerator_encounters`` (with the
readmission, follow-up visit or delivery that put each in the numerator) and ``excluded``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from gateway.store import careteams
from gateway.store.repository import Repository
from gateway.timeline import cases as c
from gateway.timeline import notified
from gateway.timeline.panel import Panel, patients
from gateway.timeline.period import Period
from gateway.timeline.visits import visit

#: Measure name -> kind: ``count`` (encounters), ``rate`` (numerator / denominator) or
#: ``median`` (median hours over the numerator).
KINDS = {
    "ed_visits": "count",
    "inpatient_admissions": "count",
    "readmission_30d": "rate",
    "follow_up_7d": "rate",
    "follow_up_30d": "rate",
    "pcp_notification_hours": "median",
}
CaseMap = dict[str, list[c.Case]]


def report(repo: Repository, period: Period, panel: Panel,
           now: float | None = None) -> dict[str, Any]:
    """The panel's figures and each patient's, for every month of the period and in total;
    the plan-version share is as of ``now``."""
    now = time.time() if now is None else now
    totals: CaseMap = {name: [] for name in KINDS}
    plans: list[dict[str, Any]] = []
    rows = []
    for patient in patients(repo, panel, period):
        found, held = patient_cases(repo, patient, period, now)
        for name, items in found.items():
            totals[name].extend(items)
        plans.extend(held)
        rows.append({"patient": patient, "name": display_name(repo, patient),
                     "measures": figures(found, period),
                     "plan_version_current": notified.share(held)})
    return {"period": period.text(), "months": period.months, "panel": panel.describe(),
            "patient_count": len(rows), "measures": figures(totals, period),
            "plan_version_current": notified.share(plans), "patients": rows}


def patient_cases(repo: Repository, patient: str, period: Period,
                  now: float) -> tuple[CaseMap, list[dict[str, Any]]]:
    """One patient's cases per measure, and the care-team holders of their current plans."""
    visits = [visit(body, patient) for body in
              careteams.search_all(repo, "Encounter", [("patient", patient)])]
    teams = careteams.patient_teams(repo, patient)
    found = {
        "ed_visits": c.visits_of_class(visits, period, "EMER"),
        "inpatient_admissions": c.visits_of_class(visits, period, "IMP"),
        "readmission_30d": c.readmissions(visits, period),
        "follow_up_7d": c.follow_ups(visits, period, 7),
        "follow_up_30d": c.follow_ups(visits, period, 30),
        "pcp_notification_hours": notified.pcp_notifications(repo, visits, period, teams),
    }
    return found, notified.plan_holders(repo, patient, teams, now)


def display_name(repo: Repository, patient: str) -> str | None:
    """The patient's first name as people read it (HumanName.text, else given + family)."""
    stored = careteams.read_reference(repo, patient)
    names = stored.json().get("name") or [] if stored is not None else []
    if not names:
        return None
    name = names[0]
    text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
    return str(text).strip() or None


def figures(found: CaseMap, period: Period) -> dict[str, Any]:
    """Each measure in total and by month."""
    return {name: {"total": summarize(KINDS[name], items),
                   "by_month": {m: summarize(KINDS[name], [i for i in items if i.month == m])
                                for m in period.months}}
            for name, items in found.items()}


def summarize(kind: str, items: list[c.Case]) -> dict[str, Any]:
    """One figure with the encounters behind it."""
    counted = [i for i in items if not i.excluded]
    if kind == "count":
        return {"count": len(counted), "encounters": [i.encounter for i in counted]}
    hits = [i for i in counted if i.hit]
    figure: dict[str, Any] = {
        "numerator": len(hits), "denominator": len(counted),
        "numerator_encounters": [{"encounter": i.encounter, **i.evidence} for i in hits],
        "denominator_encounters": [i.encounter for i in counted],
        "excluded": [{"encounter": i.encounter, "reason": i.excluded}
                     for i in items if i.excluded]}
    if kind == "rate":
        figure["rate"] = round(len(hits) / len(counted), 4) if counted else None
    else:
        figure["median_hours"] = notified.median_hours(counted)
    return figure


# -- CSV ------------------------------------------------------------------------------

CSV_HEADER = ("scope", "measure", "month", "numerator", "denominator", "value")


def csv_rows(document: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The report flattened: one row per scope (``panel`` or a patient), measure and month
    (``total`` for the whole period; ``current`` for the plan-version share)."""
    yield CSV_HEADER
    scopes = [("panel", document["measures"], document["plan_version_current"])]
    scopes += [(p["patient"], p["measures"], p["plan_version_current"])
               for p in document["patients"]]
    for scope, measures, plans in scopes:
        for name, figure in measures.items():
            yield _csv_row(scope, name, "total", figure["total"])
            for month, value in figure["by_month"].items():
                yield _csv_row(scope, name, month, value)
        yield (scope, "plan_version_current", "current", plans["numerator"],
               plans["denominator"], _blank(plans["share"]))


def _csv_row(scope: str, name: str, month: str, figure: dict[str, Any]) -> tuple[Any, ...]:
    kind = KINDS[name]
    if kind == "count":
        return scope, name, month, figure["count"], "", figure["count"]
    value = figure["rate"] if kind == "rate" else figure["median_hours"]
    return scope, name, month, figure["numerator"], figure["denominator"], _blank(value)


def _blank(value: Any) -> Any:
    return "" if value is None else value
