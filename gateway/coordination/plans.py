"""Apply a mapped case-management plan or care-team roster to the store, inside the
caller's unit of work (the caller commits).

Semantics (issue: plans and care teams in):

- **Upsert by source identifier.** Owned resources have ids derived from their source
  identifiers (``mapping/plancommon.stable_id``); each is written with ``Repository.update``
  only when its content differs from the current version (meta excluded), so a re-sent
  document writes nothing and a changed one writes new versions of only what changed.
- **Shared identity.** The Patient, Practitioners, Organizations and RelatedPersons are found
  by identifier through ``identity.Resolver``, the code the ADT feed uses, and created only
  when nothing matches.
- **Ended, not vanished.** A participant missing from a re-sent roster is kept with
  ``period.end`` (R4 careteam.html: participant.period "time period of participant"), the
  roster's ``asOf`` date or, without one, the day it is received.

References between a plan's resources go both ways (CarePlan.activity -> Task, Task.basedOn
-> CarePlan), so reference checks are deferred to the commit (R4 http.html#trules).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import and_, bindparam, select

from gateway.coordination.identity import Resolver
from gateway.errors import Gone, MultipleMatches, NotFound
from gateway.mapping.issues import MappingIssue
from gateway.mapping.plancommon import PARTY_PREFIX, PATIENT, MappedDocument
from gateway.rest.interactions import FhirService
from gateway.store.repository import Repository
from gateway.store.tables import resource_table, version_table

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
R, V = resource_table.c, version_table.c
_CURRENT = (select(R.type, R.id, R.deleted, V.body)
            .join_from(resource_table, version_table,
                       and_(V.rid == R.rid, V.version_id == R.version_id))
            .where(R.id.in_(bindparam("ids", expanding=True))))


@dataclass
class Written:
    """One resource of the document: ``Type/id/_history/n`` and what happened to it."""

    reference: str
    status: str


@dataclass
class PlanResult:
    """What one document did: ``outcome`` is created / updated / unchanged."""

    outcome: str = UNCHANGED
    resources: list[Written] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)

    def note(self, reference: str, status: str, *, main: bool = False) -> None:
        self.resources.append(Written(reference, status))
        if main and status == CREATED:
            self.outcome = CREATED
        elif status != UNCHANGED and self.outcome == UNCHANGED:
            self.outcome = UPDATED


class PlanWorkflow:
    """Writes plans and rosters through the Repository of the caller's unit of work."""

    def __init__(self, service: FhirService, base: str = "") -> None:
        self.service = service
        self.base = base

    def apply(self, repo: Repository, mapped: MappedDocument, *, source: str,
              today: str | None = None) -> PlanResult:
        repo.defer_reference_checks()
        self._lock(repo, mapped)
        resolver = Resolver(self.service, repo, self.base, source)
        result = PlanResult(issues=list(mapped.issues))
        refs = self._parties(resolver, mapped, result)
        currents = _currents(repo, [r["id"] for r in mapped.resources] + _teams(mapped))
        for index, resource in enumerate(mapped.resources):
            body = _resolved(resource, refs)
            key = (body["resourceType"], body["id"])
            current = currents.get(key)
            if body["resourceType"] == "CarePlan":
                self._check_team(currents, body, result)
                _keep_workflow_activities(body, current)
            if body["resourceType"] == "CareTeam":
                _keep_departed(body, current, mapped.ended_on or today or _today())
            self._write(repo, body, current, source, result, main=index == 0,
                        new=key not in currents)
            if body["resourceType"] == "CarePlan" and current is not None:
                self._retire(repo, _named(current) - _named(body), mapped, source, result)
        return result

    def _retire(self, repo: Repository, dropped: set[str], mapped: MappedDocument,
                source: str, result: PlanResult) -> None:
        """Resources the plan no longer names keep existing with a final status
        (``removed`` in careplan.yaml), so history shows when they left the plan."""
        for reference in sorted(dropped):
            kind, resource_id = reference.split("/", 1)
            rule = mapped.on_removal.get(kind)
            current = _current(repo, kind, resource_id)
            if rule is None or current is None:
                continue
            body = copy.deepcopy(current)
            element = rule["element"]
            if _status_of(body.get(element)) in rule.get("final", []):
                continue
            body[element] = _status_like(body.get(element), rule["value"])
            self._write(repo, body, current, source, result, main=False)

    def _lock(self, repo: Repository, mapped: MappedDocument) -> None:
        """Serialize documents with the same source identifier (the conditional-write lock
        of R4 http.html#cond-update, held to the commit), so two copies of one new plan
        sent at once create it once and the second finds it ``unchanged``. The main
        resource is then read by its derived id (``_currents``); a search is not needed,
        only the conditional update's refusal when the identifier is ambiguous."""
        main = mapped.resources[0]["resourceType"]
        system, value = mapped.identifier["system"], mapped.identifier["value"]
        criteria = [("identifier", f"{system}|{value}")]
        self.service.lock_condition(repo, main, criteria)
        if len(repo.ids_by_identifier(main, [(system, value)]).get((system, value), [])) > 1:
            raise MultipleMatches(f"The conditional update criteria {urlencode(criteria)!r} "
                                  f"match more than one {main}.")

    def _parties(self, resolver: Resolver, mapped: MappedDocument,
                 result: PlanResult) -> dict[str, str]:
        """Find or create the Patient and every party; placeholder -> ``Type/id``."""
        patient, created = resolver.resolve_patient(copy.deepcopy(mapped.patient),
                                                    update=False, fill=True)
        result.note(f"Patient/{patient}", CREATED if created else UNCHANGED)
        refs = {PATIENT: f"Patient/{patient}"}
        for key, party in mapped.parties.items():
            body = _resolved(party, refs)
            party_id, created = resolver.resolve(body)
            refs[key] = f"{body['resourceType']}/{party_id}"
            result.note(refs[key], CREATED if created else UNCHANGED)
        return refs

    @staticmethod
    def _check_team(currents: dict[tuple[str, str], dict[str, Any] | None],
                    body: dict[str, Any], result: PlanResult) -> None:
        """CarePlan.careTeam only when that roster has arrived (references must resolve)."""
        teams = []
        for team in body.get("careTeam") or []:
            if currents.get(("CareTeam", team["reference"].split("/", 1)[1])) is not None:
                teams.append(team)
            else:
                result.issues.append(MappingIssue(
                    "/careTeamId", "no care-team roster with this id has been received yet; "
                                   "CarePlan.careTeam left out"))
        if teams:
            body["careTeam"] = teams
        else:
            body.pop("careTeam", None)

    @staticmethod
    def _write(repo: Repository, body: dict[str, Any], current: dict[str, Any] | None,
               source: str, result: PlanResult, *, main: bool, new: bool = False) -> None:
        """Write ``body`` unless its content equals the current version's; a resource
        never stored before is created under its derived id (no lookup needed)."""
        kind, resource_id = body["resourceType"], body["id"]
        if current is not None and _content(current) == _content(body):
            result.note(f"{kind}/{resource_id}/_history/{current['meta']['versionId']}",
                        UNCHANGED, main=main)
            return
        body["meta"] = {"source": source}
        written = (repo.create(body, resource_id=resource_id) if new
                   else repo.update(kind, resource_id, body))
        status = CREATED if written.created else UPDATED
        result.note(f"{kind}/{resource_id}/_history/{written.resource.version_id}", status,
                    main=main)


def _keep_departed(body: dict[str, Any], current: dict[str, Any] | None, ended: str) -> None:
    """Participants of the current version missing from the roster stay, with period.end."""
    if current is None:
        return
    listed = {p.get("id") for p in body.get("participant") or []}
    for old in current.get("participant") or []:
        if old.get("id") in listed:
            continue
        period = dict(old.get("period") or {})
        if not period.get("end"):
            start = period.get("start")
            period["end"] = max(ended, start) if start else ended
        body.setdefault("participant", []).append({**old, "period": period})


def _keep_workflow_activities(body: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Activities the document does not own -- the follow-ups the transition workflows
    added (``activity.detail``, coordination/followups.py) -- stay on a re-sent plan."""
    kept = [a for a in (current or {}).get("activity") or [] if "detail" in a]
    if kept:
        body["activity"] = [*(body.get("activity") or []), *kept]


def _teams(mapped: MappedDocument) -> list[str]:
    """Ids of the CareTeams a plan names (read with its own resources)."""
    return [team["reference"].split("/", 1)[1] for resource in mapped.resources
            if resource["resourceType"] == "CarePlan" for team in resource.get("careTeam") or []]


def _named(careplan: dict[str, Any]) -> set[str]:
    """The Conditions, Goals and Tasks a CarePlan names."""
    refs = [r.get("reference") for r in careplan.get("addresses", []) + careplan.get("goal", [])]
    refs += [(a.get("reference") or {}).get("reference") for a in careplan.get("activity", [])]
    return {r for r in refs if r}


def _status_of(value: Any) -> str | None:
    """A code, or the first code of a CodeableConcept (Condition.clinicalStatus)."""
    if isinstance(value, dict):
        return next((c.get("code") for c in value.get("coding") or []), None)
    return value


def _status_like(value: Any, code: str) -> Any:
    if isinstance(value, dict):
        coding = (value.get("coding") or [{}])[0]
        return {"coding": [{**coding, "code": code}]}
    return code


def _currents(repo: Repository,
              ids: list[str]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Current versions of the document's own resources, in one query; None for one that
    was deleted (it exists, so it is written as a new version, not created)."""
    rows = repo.conn.execute(_CURRENT, {"ids": ids}) if ids else []
    return {(row.type, row.id): None if row.deleted else orjson.loads(row.body)
            for row in rows}


def _current(repo: Repository, kind: str, resource_id: str) -> dict[str, Any] | None:
    try:
        return repo.read(kind, resource_id).json()
    except (NotFound, Gone):
        return None


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "id", "text")}


def _resolved(node: Any, refs: dict[str, str]) -> Any:
    """A copy of ``node`` with ``urn:party:`` placeholders replaced by ``Type/id``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith(PARTY_PREFIX):
            return {**node, "reference": refs[ref]}
        return {k: _resolved(v, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolved(v, refs) for v in node]
    return node


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
