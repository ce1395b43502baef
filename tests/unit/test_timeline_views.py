"""Pure parts of the timeline: care plan diffs, care team membership, overdue tasks, and the
pages' date formatting."""

from __future__ import annotations

import pytest

from gateway.api.pages import absolute, relative
from gateway.store.access import Access, access_as
from gateway.timeline.careplans import diff
from gateway.timeline.careteams import careteam_entries
from gateway.timeline.deliveries import delivery_entries
from gateway.timeline.sources import Delivery, Version
from gateway.timeline.tasks import is_overdue

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def _plan(status: str, activities: list[dict], goals: list[str]) -> dict:
    return {"resourceType": "CarePlan", "status": status,
            "goal": [{"reference": g} for g in goals], "activity": activities}


def _detail(text: str, status: str) -> dict:
    return {"detail": {"code": {"text": text}, "status": status}}


def test_a_plan_diff_names_what_changed() -> None:
    old = _plan("active", [_detail("Outreach call", "scheduled"), _detail("Diet", "scheduled")],
                ["Goal/a", "Goal/b"])
    new = _plan("completed", [_detail("Outreach call", "completed"),
                              {"reference": {"reference": "Task/t1"}}], ["Goal/a"])
    names = {"Goal/b": "Walk daily", "Task/t1": "Follow-up visit (due 2026-11-27)"}
    assert diff(old, new, names) == [
        "Status changed: active → completed",
        "Goal removed: Walk daily",
        "Activity added: Follow-up visit (due 2026-11-27)",
        "Activity removed: Diet",
        "Activity Outreach call: scheduled → completed"]
    assert diff(new, new, names) == []


def test_a_member_removed_from_a_team_leaves_it() -> None:
    def version(n: int, members: list[str]) -> Version:
        body = {"name": "Team", "participant": [{"member": {"reference": m}} for m in members]}
        return Version("CareTeam", "t", n, NOW + n, False, body)

    entries = careteam_entries([version(1, ["Practitioner/a", "Practitioner/b"]),
                                version(2, ["Practitioner/a"])], {"Practitioner/b": "Bo"})
    assert [(e.kind, e.summary) for e in entries] == [
        ("careteam.joined", "Practitioner/a joined Team"),
        ("careteam.joined", "Bo joined Team"),
        ("careteam.left", "Bo left Team")]
    assert entries[-1].reference == "CareTeam/t/_history/2"


@pytest.mark.parametrize(("task", "overdue"), [
    ({"status": "requested", "restriction": {"period": {"end": "2026-11-01"}}}, True),
    ({"status": "requested", "restriction": {"period": {"end": "2027-01-01"}}}, False),
    ({"status": "completed", "restriction": {"period": {"end": "2026-11-01"}}}, False),
    ({"status": "in-progress", "businessStatus": {"coding": [{"code": "overdue"}]}}, True),
    ({"status": "requested"}, False),
])
def test_overdue_means_open_and_flagged_or_past_due(task: dict, overdue: bool) -> None:
    assert is_overdue(task, NOW) is overdue


def test_dates_are_shown_absolute_and_relative() -> None:
    assert absolute(0.0) == "1970-01-01 00:00 UTC"
    assert absolute("2026-11-21") == "2026-11-21"
    assert absolute("2026-11-20T10:30:00-05:00") == "2026-11-20 15:30 UTC"
    assert relative(NOW - 3 * 86400, NOW) == "3 days ago"
    assert relative(NOW + 7200, NOW) == "in 2 hours"
    assert relative(NOW - 10, NOW) == "just now"
    assert relative(None) == ""


def test_endpoints_are_shown_only_to_viewers_who_may_see_every_subscriber() -> None:
    failed = Delivery(1, "failed", 1.0, None, "connect to https://ehr.b.example/hook refused", 3,
                      "https://ehr.b.example/hook", "Subscription/s1", "Encounter/e1/_history/2")
    names = {"Subscription/s1": "Hospital B"}
    admin = delivery_entries([failed], names)[0]
    assert "https://ehr.b.example/hook" in admin.summary
    with access_as(Access(organizations=("Organization/a",))):
        scoped = delivery_entries([failed], names)[0]
    assert "Hospital B" in scoped.summary
    assert "ehr.b.example" not in scoped.summary + " ".join(scoped.details or ())
