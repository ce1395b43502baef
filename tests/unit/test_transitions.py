"""The transition workflow rules, evaluated without a database: triggers, due dates over
weekends and holidays, what satisfies a follow-up, what is overdue; and the rules files'
checks on load."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.coordination import transitions as tr
from gateway.mapping.issues import MappingFileError
from gateway.mapping.workflowrules import WorkflowRules

MAPPINGS = Path(__file__).parents[2] / "mappings"
RULES = WorkflowRules.load(MAPPINGS)
NY = ZoneInfo("America/New_York")


def encounter(status: str, klass: str, start: str | None = None,
              end: str | None = None) -> dict[str, Any]:
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    return {"resourceType": "Encounter", "id": "e1", "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": klass}, "period": period}


@pytest.mark.parametrize(("start", "days", "business", "due"), [
    (date(2024, 3, 9), 7, False, date(2024, 3, 16)),    # Saturday + 7 calendar days
    (date(2024, 3, 9), 2, True, date(2024, 3, 12)),     # Saturday: Monday, Tuesday
    (date(2024, 3, 8), 2, True, date(2024, 3, 12)),     # Friday: Monday, Tuesday
    (date(2024, 3, 6), 2, True, date(2024, 3, 8)),      # Wednesday: Thursday, Friday
    (date(2024, 3, 7), 1, True, date(2024, 3, 8)),      # Thursday: Friday
    (date(2024, 3, 8), 0, True, date(2024, 3, 8)),      # nothing to count
    (date(2024, 12, 31), 7, False, date(2025, 1, 7)),   # across the year
])
def test_due_dates(start: date, days: int, business: bool, due: date) -> None:
    assert tr.due_date(start, days, business, frozenset()) == due


def test_business_days_skip_holidays() -> None:
    holidays = frozenset({date(2026, 12, 25)})
    # Thursday 24 December 2026: Friday is a holiday, so Monday and Tuesday.
    assert tr.due_date(date(2026, 12, 24), 2, True, holidays) == date(2026, 12, 29)


@pytest.mark.parametrize(("status", "klass", "fired"), [
    ("finished", "IMP", ["discharge"]),
    ("finished", "OBSENC", ["discharge"]),
    ("finished", "EMER", ["discharge", "ed-visit"]),
    ("in-progress", "IMP", ["admission"]),
    ("in-progress", "OBSENC", ["admission"]),
    ("in-progress", "EMER", ["ed-visit"]),
    ("finished", "AMB", []),
    ("planned", "IMP", []),
    ("cancelled", "IMP", []),
])
def test_triggers(status: str, klass: str, fired: list[str]) -> None:
    assert [t.name for t in tr.fired(RULES.default, encounter(status, klass))] == fired


def test_discharge_followups_count_from_the_discharge_in_the_program_time_zone() -> None:
    # 03:30 UTC on Sunday 10 March is still Saturday 9 March in New York.
    found = tr.followups(RULES.default, encounter("finished", "IMP", "2024-03-05T08:00:00Z",
                                                  "2024-03-10T03:30:00Z"), "2024-03-10")
    assert {f.rule_id: f.due.isoformat() for f in found} == {
        "discharge/followup-visit": "2024-03-16",
        "discharge/medication-reconciliation": "2024-03-16",
        "discharge/post-discharge-call": "2024-03-12",
    }
    assert {f.start for f in found} == {"2024-03-10T03:30:00Z"}


@pytest.mark.parametrize(("recorded", "count"), [
    ("2024-03-10T04:00:00Z", 3),    # news: recorded half an hour after the discharge
    ("2024-04-09T03:30:00Z", 3),    # 30 days later: still within max_age_days
    ("2024-04-10T03:30:00Z", 0),    # 31 days later: a history load raises nothing
])
def test_transitions_recorded_long_after_they_happened_raise_nothing(recorded: str,
                                                                    count: int) -> None:
    assert RULES.default.max_age_days == 30
    found = tr.followups(RULES.default, encounter("finished", "IMP", "2024-03-05T08:00:00Z",
                                                  "2024-03-10T03:30:00Z"), recorded)
    assert len(found) == count


def test_followups_without_a_period_count_from_the_version_time() -> None:
    found = tr.followups(RULES.default, encounter("in-progress", "IMP"),
                         "2024-03-07T15:00:00+00:00")
    assert [(f.rule_id, f.due.isoformat()) for f in found] == [
        ("admission/contact-inpatient-team", "2024-03-08")]


def _visit_task() -> dict[str, Any]:
    return {"status": "requested",
            "restriction": {"period": {"start": "2024-03-09T10:45:00+00:00",
                                       "end": "2024-03-16"}}}


@pytest.mark.parametrize(("visit", "satisfied"), [
    (encounter("finished", "AMB", "2024-03-12T09:00:00-04:00"), True),
    (encounter("finished", "AMB", "2024-03-16T23:00:00-04:00"), True),   # last day, late
    (encounter("finished", "AMB", "2024-03-17T09:00:00-04:00"), False),  # after the window
    (encounter("finished", "AMB", "2024-03-08T09:00:00-05:00"), False),  # before discharge
    (encounter("in-progress", "AMB", "2024-03-12T09:00:00-04:00"), False),
    (encounter("finished", "IMP", "2024-03-12T09:00:00-04:00"), False),
    (encounter("finished", "AMB"), False),                               # no time at all
])
def test_an_ambulatory_visit_in_the_window_satisfies_the_followup_visit(
        visit: dict[str, Any], satisfied: bool) -> None:
    activity = RULES.default.activities["followup-visit"]
    assert tr.satisfies(activity, _visit_task(), visit, NY) is satisfied


def test_only_activities_with_satisfied_by_are_satisfied_by_visits() -> None:
    activity = RULES.default.activities["medication-reconciliation"]
    visit = encounter("finished", "AMB", "2024-03-12T09:00:00-04:00")
    assert tr.satisfies(activity, _visit_task(), visit, NY) is False


@pytest.mark.parametrize(("status", "today", "overdue"), [
    ("requested", date(2024, 3, 17), True),
    ("in-progress", date(2024, 3, 17), True),
    ("requested", date(2024, 3, 16), False),  # due today: not yet
    ("completed", date(2024, 3, 30), False),
    ("cancelled", date(2024, 3, 30), False),
])
def test_overdue(status: str, today: date, overdue: bool) -> None:
    task = dict(_visit_task(), status=status)
    assert tr.is_overdue(task, today, NY) is overdue


@pytest.mark.parametrize(("task_status", "activity_status"), [
    ("requested", "not-started"), ("accepted", "scheduled"), ("in-progress", "in-progress"),
    ("completed", "completed"), ("rejected", "cancelled"), ("failed", "stopped"),
    ("nonsense", "unknown"),
])
def test_activity_status_follows_the_task(task_status: str, activity_status: str) -> None:
    assert tr.activity_status(RULES.default, task_status) == activity_status


def test_programs_are_chosen_by_category_or_instantiates() -> None:
    hf = {"category": [{"coding": [{"system": "urn:care-management:acme-cm:program",
                                    "code": "hf"}]}]}
    canonical = {"instantiatesCanonical": [
        "http://fhir-care-gateway.org/PlanDefinition/heart-failure-transitions"]}
    other = {"category": [{"coding": [{"system": "x", "code": "ccm"}]}]}
    assert RULES.for_plan(hf).program == "heart-failure"
    assert RULES.for_plan(canonical).program == "heart-failure"
    assert RULES.for_plan(other).program is None
    heart = RULES.for_plan(hf)
    assert heart.activities["followup-visit"].days == 3
    assert heart.activities["medication-reconciliation"].days == 7  # inherited


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    return root


@pytest.mark.parametrize(("path", "old", "new", "message"), [
    ("workflows/transitions.yaml", "unit: business}", "unit: fortnights}",
     "due/unit: .fortnights. is not one of"),
    ("workflows/transitions.yaml", "activities: [contact-inpatient-team]",
     "activities: [contact-the-moon]", "unknown activity 'contact-the-moon'"),
    ("workflows/transitions.yaml", "timezone: America/New_York", "timezone: Mars/Olympus",
     "unknown time zone"),
    ("workflows/programs/heart-failure.yaml", "match:", "matches:", "heart-failure.yaml"),
])
def test_broken_rules_files_fail_on_load(tmp_path: Path, path: str, old: str, new: str,
                                         message: str) -> None:
    root = _copy(tmp_path)
    target = root / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(MappingFileError, match=message):
        WorkflowRules.load(root)
