"""Pure evaluation of the transition workflow rules (``mappings/workflows/``): which rules an
Encounter fires, the follow-ups they ask for and when each is due, whether an Encounter
satisfies a follow-up, whether a Task is overdue. No database, no clock of its own.

Encounter states come from R4 encounter.html: ``status`` (EncounterStatus) and ``class`` (a
v3 ActCode Coding: IMP inpatient, EMER emergency, OBSENC observation, AMB ambulatory). A
discharge is an Encounter ``finished``; its due dates count from ``period.end``; an
admission's from ``period.start`` (the version's lastUpdated when the period lacks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.mapping.workflowrules import Activity, ProgramRules, Trigger

OPEN_TASK_STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress",
                      "on-hold")


@dataclass(frozen=True)
class FollowUp:
    """One Task the rules ask for: rule id ``<trigger>/<activity>``, window start, due date."""

    rule_id: str
    activity: Activity
    start: str
    due: date


def encounter_class(encounter: dict[str, Any]) -> str | None:
    """The v3 ActCode of ``Encounter.class`` (a Coding in R4)."""
    klass = encounter.get("class")
    return klass.get("code") if isinstance(klass, dict) else None


def fired(rules: ProgramRules, encounter: dict[str, Any]) -> list[Trigger]:
    """The triggers whose status and class the Encounter has."""
    status, klass = encounter.get("status"), encounter_class(encounter)
    return [t for t in rules.triggers if status in t.status and klass in t.classes]


def followups(rules: ProgramRules, encounter: dict[str, Any],
              last_updated: str) -> list[FollowUp]:
    """Every follow-up the Encounter's state asks for, with its due date; none for a
    transition recorded (``last_updated``) more than ``max_age_days`` after it happened."""
    out = []
    for trigger in fired(rules, encounter):
        start = event_time(encounter, trigger.from_end) or last_updated
        if _too_old(rules, start, last_updated):
            continue
        first_day = local_date(start, rules.timezone)
        for name in trigger.activities:
            activity = rules.activities[name]
            due = due_date(first_day, activity.days, activity.business_days, rules.holidays)
            out.append(FollowUp(f"{trigger.name}/{name}", activity, start, due))
    return out


def _too_old(rules: ProgramRules, happened: str, recorded: str) -> bool:
    if rules.max_age_days is None:
        return False
    return (_instant(recorded) - _instant(happened)).days > rules.max_age_days


def event_time(encounter: dict[str, Any], from_end: bool) -> str | None:
    period = encounter.get("period") or {}
    return period.get("end" if from_end else "start")


def local_date(moment: str, zone: ZoneInfo) -> date:
    """The calendar date of a FHIR date/dateTime in ``zone`` (a date is taken as it is;
    a dateTime without an offset is read as UTC, as the search index reads it)."""
    if len(moment) <= 10:
        return date.fromisoformat(_full_date(moment))
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo("UTC"))
    return parsed.astimezone(zone).date()


def _full_date(text: str) -> str:
    """A partial FHIR date (``2024``, ``2024-03``) as its first day."""
    parts = text.split("-")
    return "-".join([parts[0], *[*parts[1:], "01", "01"][:2]])


def due_date(start: date, days: int, business: bool, holidays: frozenset[date]) -> date:
    """``days`` calendar days after ``start``, or ``days`` business days (Monday to Friday,
    holidays excepted): a discharge on Friday with 2 business days is due on Tuesday."""
    if not business:
        return start + timedelta(days=days)
    day, left = start, days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day


def satisfies(activity: Activity, task: dict[str, Any], encounter: dict[str, Any],
              zone: ZoneInfo) -> bool:
    """Whether ``encounter`` (e.g. an ambulatory visit, finished) completes the Task: it
    has the activity's ``satisfied_by`` status and class and started within the Task's
    window (``restriction.period``: from the discharge to the end of the due date)."""
    rule = activity.satisfied_by
    if not rule or encounter.get("status") not in rule["status"] \
            or encounter_class(encounter) not in rule["class"]:
        return False
    when = event_time(encounter, False) or event_time(encounter, True)
    window = (task.get("restriction") or {}).get("period") or {}
    if not when or not window.get("start") or not window.get("end"):
        return False
    return _instant(window["start"]) <= _instant(when) \
        and local_date(when, zone) <= local_date(window["end"], zone)


def _instant(moment: str) -> datetime:
    if len(moment) <= 10:
        return datetime.fromisoformat(_full_date(moment)).replace(tzinfo=ZoneInfo("UTC"))
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))


def due_of(task: dict[str, Any]) -> str | None:
    return ((task.get("restriction") or {}).get("period") or {}).get("end")


def is_overdue(task: dict[str, Any], today: date, zone: ZoneInfo) -> bool:
    """An open Task whose due date (``restriction.period.end``) has passed."""
    due = due_of(task)
    return task.get("status") in OPEN_TASK_STATUSES and due is not None \
        and local_date(due, zone) < today


def activity_status(rules: ProgramRules, task_status: str | None) -> str:
    """CarePlan.activity.detail.status for a Task.status (``activity_status`` of the rules)."""
    return rules.activity_status.get(task_status or "", "unknown")
