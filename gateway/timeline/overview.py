"""What the coordinator pages show, as plain data: patient search, one patient's plan, team,
follow-ups and timeline, and the panel of patients needing attention. No HTML here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.rest.interactions import FhirService
from gateway.store.repository import Repository
from gateway.timeline import describe as d
from gateway.timeline.careteams import member_label, members
from gateway.timeline.entry import Entry
from gateway.timeline.service import PatientData, load, require_patient
from gateway.timeline.sources import current_bodies, reading
from gateway.timeline.tasks import OPEN, due, flagged_overdue, is_overdue, label

CURRENT_PLAN = ("active", "draft", "on-hold")
DAY = 86_400.0


@dataclass(frozen=True)
class PatientLine:
    """A patient in a list: id, name and what identifies them."""

    id: str
    name: str
    birth_date: str
    identifiers: list[str]


@dataclass(frozen=True)
class FollowUp:
    """An open or recently closed Task: what, who, when due, whether overdue."""

    reference: str
    label: str
    owner: str
    due: str | None
    status: str
    overdue: bool


@dataclass(frozen=True)
class PlanItem:
    """A goal or an activity of the current plan."""

    label: str
    status: str
    owner: str = ""
    due: str | None = None
    overdue: bool = False


@dataclass(frozen=True)
class PatientPage:
    patient: PatientLine
    plan_title: str | None
    plan_status: str | None
    goals: list[PlanItem]
    activities: list[PlanItem]
    team: list[tuple[str, str]]  # (member, since)
    follow_ups: list[FollowUp]
    timeline: list[Entry]
    total: int  # timeline entries in all; the page shows the newest ``len(timeline)``


@dataclass
class Attention:
    """A patient of the panel and why they need attention now."""

    patient: PatientLine
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (tone, text)


def patient_line(body: dict[str, Any]) -> PatientLine:
    identifiers = [str(i.get("value")) for i in body.get("identifier") or [] if i.get("value")]
    name = d.human_name(body.get("name")) or (f"No name ({identifiers[0]})" if identifiers
                                              else "No name")
    return PatientLine(str(body.get("id")), name,
                       str(body.get("birthDate") or ""), identifiers)


def find_patients(service: FhirService, text: str, limit: int = 50) -> list[PatientLine]:
    """Patients whose name or identifier matches ``text`` (FHIR search ``name`` and
    ``identifier`` on Patient, R4 patient.html#search), names first."""
    text = text.strip()
    if not text:
        return []
    found: dict[str, PatientLine] = {}
    with reading(service.db) as conn:
        repo = Repository(service.db, conn)
        for param in ("name", "identifier"):
            request = service.parse("", "Patient", [(param, text), ("_count", str(limit))])
            _page, stored = repo.search_page(request)
            for item in stored.values():
                found.setdefault(item.id, patient_line(item.json()))
    return sorted(found.values(), key=lambda p: p.name)[:limit]


def patient_page(db: Any, patient_id: str, *, now: float | None = None,
                 limit: int = 300) -> PatientPage:
    """Everything the patient page shows; NotFound for an unknown patient."""
    now = now or time.time()
    patient = patient_line(require_patient(db, patient_id))
    data = load(db, patient_id, now)
    tasks = _latest(data, "Task")
    plan = _current(_latest(data, "CarePlan"), CURRENT_PLAN)
    with reading(db) as conn:
        goals = current_bodies(conn, "Goal", [r["reference"].split("/", 1)[1]
                                              for r in (plan or {}).get("goal") or []
                                              if str(r.get("reference", "")).startswith("Goal/")])
    return PatientPage(
        patient, (plan or {}).get("title") or ("Care plan" if plan else None),
        (plan or {}).get("status"), [_goal(r, goals) for r in (plan or {}).get("goal") or []],
        _activities(plan or {}, tasks, data.names, now), _team(data),
        _follow_ups(tasks, data.names, now), data.entries[:limit], len(data.entries))


def panel(service: FhirService, coordinator: str | None, *, within_days: int = 30,
          now: float | None = None) -> tuple[list[tuple[str, str]], list[Attention]]:
    """(coordinators to choose from, patients needing attention). A coordinator's patients are
    the subjects of active CareTeams where they are a current member."""
    now = now or time.time()
    teams = _active_teams(service)
    choices: dict[str, str] = {}
    patients: list[str] = []
    for team in teams:
        current = {k: p for k, p in members(team).items()
                   if not (p.get("period") or {}).get("end")}
        choices.update({k: member_label(p, {}) for k, p in current.items()
                        if k.startswith("Practitioner/")})
        subject = (team.get("subject") or {}).get("reference", "")
        if subject.startswith("Patient/") and (coordinator is None or coordinator in current):
            patients.append(subject.split("/", 1)[1])
    names = _practitioner_names(service, list(choices))
    options = sorted(((ref, names.get(ref) or label_) for ref, label_ in choices.items()),
                     key=lambda o: o[1])
    attention = [a for a in (_attention(service.db, p, now, within_days)
                             for p in dict.fromkeys(patients)) if a is not None and a.reasons]
    attention.sort(key=lambda a: (-sum(t == "bad" for t, _ in a.reasons), a.patient.name))
    return options, attention


# -- helpers --------------------------------------------------------------------------------

def _latest(data: PatientData, resource_type: str) -> list[dict[str, Any]]:
    return [history[-1].body for key, history in data.versions.items()
            if key.startswith(resource_type + "/") and not history[-1].deleted]


def _current(bodies: list[dict[str, Any]], statuses: tuple[str, ...]) -> dict[str, Any] | None:
    live = [b for b in bodies if b.get("status") in statuses]
    return max(live, key=lambda b: (b.get("meta") or {}).get("lastUpdated", "")) if live \
        else None


def _goal(ref: dict[str, Any], goals: dict[str, dict[str, Any]]) -> PlanItem:
    body = goals.get(str(ref.get("reference", "")).removeprefix("Goal/"), {})
    target = next((t.get("dueDate") for t in body.get("target") or [] if t.get("dueDate")),
                  None)
    return PlanItem(d.concept(body.get("description")) or d.reference(ref),
                    str(body.get("lifecycleStatus") or ""), due=target)


def _activities(plan: dict[str, Any], tasks: list[dict[str, Any]], names: d.Names,
                now: float) -> list[PlanItem]:
    by_ref = {f"Task/{t.get('id')}": t for t in tasks}
    out = []
    for activity in plan.get("activity") or []:
        ref = (activity.get("reference") or {}).get("reference")
        # A transition follow-up's activity carries its Task's id (cpl-3 forbids both
        # reference and detail), coordination/followups.py.
        task = by_ref.get(ref or "") or by_ref.get(f"Task/{activity.get('id')}")
        if task is not None:
            out.append(PlanItem(label(task), str(task.get("status")),
                                d.reference(task.get("owner"), names), d.day(due(task)) or None,
                                is_overdue(task, now)))
            continue
        detail = activity.get("detail") or {}
        end = (detail.get("scheduledPeriod") or {}).get("end")
        out.append(PlanItem(d.concept(detail.get("code")) or str(detail.get("description")
                                                                  or ref or "Activity"),
                            str(detail.get("status") or ""),
                            ", ".join(d.reference(p, names) for p in detail.get("performer")
                                      or []), d.day(end) or None))
    return out


def _team(data: PatientData) -> list[tuple[str, str]]:
    out = []
    for team in _latest(data, "CareTeam"):
        if team.get("status") not in (None, "active"):
            continue
        for participant in members(team).values():
            period = participant.get("period") or {}
            if not period.get("end"):
                out.append((member_label(participant, data.names), d.day(period.get("start"))))
    return out


def _follow_ups(tasks: list[dict[str, Any]], names: d.Names, now: float) -> list[FollowUp]:
    open_ = [t for t in tasks if t.get("status") in OPEN]
    items = [FollowUp(f"Task/{t.get('id')}", label(t), d.reference(t.get("owner"), names),
                      d.day(due(t)) or None, str(t.get("status")), is_overdue(t, now))
             for t in open_]
    return sorted(items, key=lambda f: (not f.overdue, f.due or "9999"))


def _active_teams(service: FhirService) -> list[dict[str, Any]]:
    with reading(service.db) as conn:
        repo = Repository(service.db, conn)
        request = service.parse("", "CareTeam", [("status", "active"), ("_count", "1000")])
        return [s.json() for s in repo.search_page(request)[1].values()]


def _practitioner_names(service: FhirService, refs: list[str]) -> d.Names:
    with reading(service.db) as conn:
        bodies = current_bodies(conn, "Practitioner", [r.split("/", 1)[1] for r in refs])
    return {f"Practitioner/{k}": d.resource_name(v) for k, v in bodies.items()}


def _attention(db: Any, patient_id: str, now: float, within_days: int) -> Attention | None:
    try:
        patient = patient_line(require_patient(db, patient_id))
    except GatewayError:  # a team naming a deleted patient: nothing to attend to
        return None
    data = load(db, patient_id, now)
    reasons: list[tuple[str, str]] = []
    discharge = next((e for e in data.entries if e.kind == "encounter.discharged"), None)
    if discharge is not None and now - discharge.time <= within_days * DAY:
        followed = any(e.time > discharge.time and e.kind in ("encounter.visit",)
                       for e in data.entries)
        if not followed:
            reasons.append(("bad", f"{discharge.summary}; no follow-up visit since"))
    for task in _latest(data, "Task"):
        if is_overdue(task, now):
            flag = " (flagged)" if flagged_overdue(task) else ""
            reasons.append(("bad", f"Overdue{flag}: {label(task)}, due "
                                   f"{d.day(due(task)) or 'unknown'}"))
    failed = [e for e in data.entries if e.kind == "notification.failed"
              and now - e.time <= within_days * DAY]
    if failed:
        reasons.append(("warning", f"{len(failed)} notification(s) not delivered: "
                                   f"{failed[0].summary}"))
    return Attention(patient, reasons)
