"""Apply the transition workflow rules to the store, inside the caller's unit of work.

- **Raise follow-ups.** An Encounter that fires a rule (transitions.py) for a patient with an
  active CarePlan gets one FHIR R4 Task per follow-up (task.html: ``status`` requested,
  ``intent`` order, ``basedOn`` the CarePlan, ``for``/``focus`` the patient, ``encounter`` and
  ``reasonReference`` the Encounter, ``owner`` from the care team, ``restriction.period``
  from the event to the due date) and one CarePlan.activity describing it (``detail`` with
  kind Task, code, status, scheduledPeriod, performer). R4 forbids an activity carrying
  both ``reference`` and ``detail`` (careplan.html cpl-3), so the activity names its Task
  by element id (``activity.id`` = the Task id) and the Task points at the plan
  (``basedOn``): one direction only, so both stay deletable (the store refuses to delete a
  resource others refer to). The Task id derives from its identifier (Encounter id + rule
  id), so a replayed or duplicated message never makes a second Task.
- **Close them.** A Task of ours whose status changes (PUT through the FHIR API, or below)
  sets its activity's ``detail.status`` (``activity_status`` of the rules); an Encounter
  that satisfies an open follow-up (an ambulatory visit within the window) completes the
  Task and its activity and is recorded as the activity's ``outcomeReference``.
- **Flag overdue ones.** ``sweep_overdue`` sets ``Task.businessStatus`` to the rules'
  ``overdue`` coding on open Tasks past their due date; a finished Task loses the flag.

Every write goes through the Repository, so subscribers and care teams hear of it (sync).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from gateway.coordination import transitions as tr
from gateway.errors import Gone, NotFound
from gateway.fhir.dates import now_instant, to_instant
from gateway.mapping.plancommon import stable_id
from gateway.mapping.workflowrules import ProgramRules, WorkflowRules
from gateway.search.request import parse_search
from gateway.store import query
from gateway.store.repository import Repository, StoredResource

log = logging.getLogger(__name__)
SOURCE = "urn:gateway:workflow"
_PAGE = 500


class FollowUps:
    """The workflow rules applied through one repository (the caller's unit of work)."""

    def __init__(self, rules: WorkflowRules) -> None:
        self.rules = rules
        self.systems = {rules.default.task_system} | {r.task_system for _, r in rules.programs}

    # -- encounters --------------------------------------------------------------------

    def on_encounter(self, repo: Repository, encounter: dict[str, Any],
                     at: float) -> list[str]:
        """Raise the follow-ups an Encounter version (committed at epoch ``at``) asks for,
        and complete those it satisfies; the ``Type/id/_history/n`` written."""
        patient = _patient(encounter)
        if patient is None or encounter.get("status") == "entered-in-error":
            return []
        written = self._satisfy(repo, patient, encounter)
        plan = active_plan(repo, patient, at)
        if plan is not None:
            written += self._raise(repo, plan, patient, encounter, to_instant(at))
        return written

    def _raise(self, repo: Repository, plan: dict[str, Any], patient: str,
               encounter: dict[str, Any], last_updated: str) -> list[str]:
        rules = self.rules.for_plan(plan)
        wanted = tr.followups(rules, encounter, last_updated)
        if not wanted:
            return []
        owner = find_owner(repo, rules, plan, patient)
        written, activities = [], []
        for item in wanted:
            identifier = {"system": rules.task_system,
                          "value": f"{encounter['id']}|{item.rule_id}"}
            task_id = stable_id("Task", identifier)
            if repo.current_row("Task", task_id) is not None:
                continue  # raised before: a replayed or repeated message
            task = _task(rules, item, task_id, identifier, plan, patient, encounter, owner)
            stored = repo.create(task, resource_id=task_id).resource
            written.append(_ref(stored))
            activities.append(_activity(rules, task_id, task))
        if activities:
            body = copy.deepcopy(plan)
            body["activity"] = [*(body.get("activity") or []), *activities]
            written.append(_write(repo, body))
        return written

    def _satisfy(self, repo: Repository, patient: str, encounter: dict[str, Any]) -> list[str]:
        """Complete the patient's open follow-ups this Encounter satisfies."""
        if not self._may_satisfy(encounter):
            return []
        written = []
        for stored in self._open_tasks(repo, patient):
            task = stored.json()
            plan = _plan_of(repo, task)
            rules = self.rules.for_plan(plan) if plan else self.rules.default
            activity = rules.activities.get(_activity_name(rules, task) or "")
            if activity is None or not tr.satisfies(activity, task, encounter, rules.timezone):
                continue
            task["status"] = "completed"
            task.pop("businessStatus", None)
            task["output"] = [{"type": {"text": "Satisfied by"},
                               "valueReference": {"reference": f"Encounter/{encounter['id']}"}}]
            written.append(_write(repo, task))
            if plan is not None:
                written += self._close(repo, rules, plan, task,
                                       outcome=f"Encounter/{encounter['id']}")
        return written

    def _may_satisfy(self, encounter: dict[str, Any]) -> bool:
        every = [self.rules.default, *(r for _, r in self.rules.programs)]
        return any(a.satisfied_by and encounter.get("status") in a.satisfied_by["status"]
                   and tr.encounter_class(encounter) in a.satisfied_by["class"]
                   for rules in every for a in rules.activities.values())

    def _open_tasks(self, repo: Repository, patient: str) -> Iterator[StoredResource]:
        for system in sorted(self.systems):
            yield from search_all(repo, "Task", [
                ("patient", patient), ("identifier", f"{system}|"),
                ("status", ",".join(tr.OPEN_TASK_STATUSES))])

    # -- tasks -------------------------------------------------------------------------

    def on_task(self, repo: Repository, task: dict[str, Any]) -> list[str]:
        """Bring the Task's CarePlan activity in step with the Task's status; a finished
        Task loses the overdue flag."""
        if not self._ours(task):
            return []
        plan = _plan_of(repo, task)
        rules = self.rules.for_plan(plan) if plan else self.rules.default
        written = []
        if task.get("status") not in tr.OPEN_TASK_STATUSES and _flagged(rules, task):
            current = repo.read("Task", task["id"]).json()
            if current.get("meta", {}).get("versionId") == task["meta"]["versionId"]:
                current.pop("businessStatus", None)
                written.append(_write(repo, current))
        if plan is not None:
            written += self._close(repo, rules, plan, task)
        return written

    def _close(self, repo: Repository, rules: ProgramRules, plan: dict[str, Any],
               task: dict[str, Any], outcome: str | None = None) -> list[str]:
        plan = repo.read("CarePlan", plan["id"]).json()  # it may have changed just before
        status = tr.activity_status(rules, task.get("status"))
        for activity in plan.get("activity") or []:
            if activity.get("id") != task["id"] or "detail" not in activity:
                continue
            if activity["detail"].get("status") == status and outcome is None:
                return []
            activity["detail"]["status"] = status
            if outcome:
                activity["outcomeReference"] = [{"reference": outcome}]
            return [_write(repo, plan)]
        return []

    def _ours(self, task: dict[str, Any]) -> bool:
        return any(i.get("system") in self.systems for i in task.get("identifier") or [])

    # -- overdue -----------------------------------------------------------------------

    def sweep_overdue(self, repo: Repository, today: date | None = None) -> list[str]:
        """Flag every open Task of ours past its due date (``Task.businessStatus``)."""
        written = []
        for system in sorted(self.systems):
            for stored in list(search_all(repo, "Task", [
                    ("identifier", f"{system}|"),
                    ("status", ",".join(tr.OPEN_TASK_STATUSES))])):
                task = stored.json()
                plan = _plan_of(repo, task)
                rules = self.rules.for_plan(plan) if plan else self.rules.default
                day = today or datetime.now(rules.timezone).date()
                if tr.is_overdue(task, day, rules.timezone) and not _flagged(rules, task):
                    task["businessStatus"] = {"coding": [dict(rules.overdue)],
                                              "text": rules.overdue.get("display", "Overdue")}
                    written.append(_write(repo, task))
        return written


# -- reads ------------------------------------------------------------------------------

def search_all(repo: Repository, resource_type: str,
               params: list[tuple[str, str]]) -> Iterator[StoredResource]:
    """Every match of a search, page by page (the search API's own SQL)."""
    request = parse_search(resource_type, params, base_url=repo.base_url,
                           default_count=_PAGE, max_count=_PAGE)
    while True:
        page = query.run_page(repo.conn, request)
        found = repo.load_many(page.rids)
        yield from (found[rid] for rid in page.rids if rid in found)
        if not page.next_cursor:
            return
        request.cursor = page.next_cursor


def active_plan(repo: Repository, patient: str, at: float) -> dict[str, Any] | None:
    """The patient's active CarePlan that existed at epoch ``at`` (the transition's commit:
    a plan stored after the transition does not pick it up when the runner reads it late);
    of several, the one created (else updated) last."""
    plans = [s.json() for s in search_all(repo, "CarePlan",
                                          [("patient", patient), ("status", "active")])
             if repo.read_version("CarePlan", s.id, 1).last_updated <= at]
    if not plans:
        return None
    return max(plans, key=lambda p: (p.get("created") or "", p["meta"]["lastUpdated"], p["id"]))


def find_owner(repo: Repository, rules: ProgramRules, plan: dict[str, Any],
               patient: str) -> dict[str, str] | None:
    """Task.owner by the rules' ``owner`` order: the care team's lead, the plan's author,
    the care team itself."""
    teams = _teams(repo, plan, patient)
    for choice in rules.owner:
        if choice == "care-team-lead":
            lead = next((m for t in teams if (m := _lead(rules, t))), None)
            if lead:
                return lead
        elif choice == "careplan-author" and (plan.get("author") or {}).get("reference"):
            return {"reference": plan["author"]["reference"]}
        elif choice == "care-team" and teams:
            return {"reference": f"CareTeam/{teams[0]['id']}"}
    return None


def _teams(repo: Repository, plan: dict[str, Any], patient: str) -> list[dict[str, Any]]:
    named = [_read(repo, t.get("reference", "")) for t in plan.get("careTeam") or []]
    teams = [t for t in named if t is not None]
    if not teams:
        teams = [s.json() for s in search_all(repo, "CareTeam", [("patient", patient)])]
    return [t for t in teams if t.get("status", "active") == "active"]


def _lead(rules: ProgramRules, team: dict[str, Any]) -> dict[str, str] | None:
    """The current participant marked lead (careteam.yaml ``lead_extension``)."""
    today = now_instant()[1][:10]
    for participant in team.get("participant") or []:
        period = participant.get("period") or {}
        if period.get("end") and period["end"][:10] < today:
            continue
        lead = any(e.get("url") == rules.lead_extension and e.get("valueBoolean")
                   for e in participant.get("extension") or [])
        member = (participant.get("member") or {}).get("reference")
        if lead and member:
            return {"reference": member}
    return None


def _plan_of(repo: Repository, task: dict[str, Any]) -> dict[str, Any] | None:
    for based in task.get("basedOn") or []:
        if str(based.get("reference", "")).startswith("CarePlan/"):
            return _read(repo, based["reference"])
    return None


def _read(repo: Repository, reference: str) -> dict[str, Any] | None:
    kind, _, resource_id = reference.partition("/")
    if not resource_id:
        return None
    try:
        return repo.read(kind, resource_id).json()
    except (NotFound, Gone):
        return None


# -- building and writing -----------------------------------------------------------------

def _task(rules: ProgramRules, item: tr.FollowUp, task_id: str, identifier: dict[str, str],
          plan: dict[str, Any], patient: str, encounter: dict[str, Any],
          owner: dict[str, str] | None) -> dict[str, Any]:
    encounter_ref = {"reference": f"Encounter/{encounter['id']}"}
    task: dict[str, Any] = {
        "resourceType": "Task", "id": task_id, "meta": {"source": SOURCE},
        "identifier": [identifier],
        "basedOn": [{"reference": f"CarePlan/{plan['id']}"}],
        "status": "requested", "intent": "order",
        "code": _code(rules, item),
        "description": item.activity.description,
        "focus": {"reference": patient}, "for": {"reference": patient},
        "encounter": encounter_ref,
        "authoredOn": now_instant()[1],
        "reasonReference": encounter_ref,
        "restriction": {"period": {"start": item.start, "end": item.due.isoformat()}},
    }
    if item.activity.priority:
        task["priority"] = item.activity.priority
    if owner:
        task["owner"] = owner
    return task


def _code(rules: ProgramRules, item: tr.FollowUp) -> dict[str, Any]:
    own = {"system": rules.activity_system, "code": item.activity.name,
           "display": item.activity.description}
    return {"coding": [own, dict(item.activity.code)], "text": item.activity.description}


def _activity(rules: ProgramRules, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "kind": "Task", "code": task["code"],
        "status": tr.activity_status(rules, task["status"]),
        "description": task["description"],
        "scheduledPeriod": dict(task["restriction"]["period"]),
    }
    if task.get("owner"):
        detail["performer"] = [task["owner"]]
    return {"id": task_id, "detail": detail}


def _activity_name(rules: ProgramRules, task: dict[str, Any]) -> str | None:
    for coding in (task.get("code") or {}).get("coding") or []:
        if coding.get("system") == rules.activity_system:
            return str(coding.get("code"))
    return None


def _flagged(rules: ProgramRules, task: dict[str, Any]) -> bool:
    return any(c.get("system") == rules.overdue["system"] and c.get("code") ==
               rules.overdue["code"] for c in (task.get("businessStatus") or {})
               .get("coding") or [])


def _write(repo: Repository, body: dict[str, Any]) -> str:
    """A new version whose ``meta.source`` says the workflow wrote it (R4 resource.html#Meta);
    profiles and tags are kept."""
    meta = {k: v for k, v in (body.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    body["meta"] = {**meta, "source": SOURCE}
    return _ref(repo.update(body["resourceType"], body["id"], body).resource)


def _ref(stored: StoredResource) -> str:
    return f"{stored.type}/{stored.id}/_history/{stored.version_id}"


def _patient(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("subject") or {}).get("reference")
    return reference if isinstance(reference, str) and reference.startswith("Patient/") \
        else None
