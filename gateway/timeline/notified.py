"""Measures read from the delivery records: did the care team's systems hear?

Care-team routing (gateway/sync/careteam.py) keeps one event log per notification Endpoint
(a ``sync_subscription`` row whose ``rid`` is the Endpoint's); each notification is a
``sync_delivery`` row for a ``sync_event`` (type, id, version of the change), ``delivered``
with ``delivered_at`` once the receiver answered 2xx. Those rows are kept for the event
retention (``GATEWAY_EVENT_RETENTION_DAYS``), so older discharges lose their evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

from sqlalchemy import select

from gateway.store import careteams
from gateway.store.repository import Repository
from gateway.store.tables import sync_delivery_table, sync_event_table, sync_subscription_table
from gateway.timeline.cases import Case
from gateway.timeline.period import Period
from gateway.timeline.visits import DISCHARGE_CLASSES, Visit

D, E, S = sync_delivery_table.c, sync_event_table.c, sync_subscription_table.c
SNOMED_PCP = ("http://snomed.info/sct", "446050000")
LOCAL_PCP = ("http://fhir-care-gateway.org/CodeSystem/careteam-role", "pcp")
_PCP_TEXTS = frozenset({"pcp", "primary care physician", "primary care provider"})


@dataclass(frozen=True)
class Delivered:
    delivery: int
    delivered_at: float
    endpoint_rid: int
    version_id: int


def delivered(repo: Repository, resource_type: str, resource_id: str,
              endpoint_rids: set[int]) -> list[Delivered]:
    """Successful notifications of changes to one resource sent to those Endpoints, oldest
    first."""
    if not endpoint_rids:
        return []
    rows = repo.conn.execute(
        select(D.id, D.delivered_at, S.rid, E.version_id)
        .join_from(sync_delivery_table, sync_event_table, E.pk == D.event_pk)
        .join(sync_subscription_table, S.sid == D.sid)
        .where(E.type == resource_type, E.id == resource_id, D.status == "delivered",
               S.rid.in_(sorted(endpoint_rids)))
        .order_by(D.delivered_at, D.id))
    return [Delivered(int(r[0]), float(r[1]), int(r[2]), int(r[3])) for r in rows]


def is_pcp(participant: dict[str, Any]) -> bool:
    """A participant whose role is primary care physician (SNOMED CT 446050000, the code the
    careteam-role ConceptMap maps ``pcp`` to, or that local code or text)."""
    for role in participant.get("role") or []:
        codings = {(c.get("system"), c.get("code")) for c in role.get("coding") or []}
        if SNOMED_PCP in codings or LOCAL_PCP in codings:
            return True
        if str(role.get("text", "")).strip().lower() in _PCP_TEXTS:
            return True
    return False


def endpoint_rids(repo: Repository, member: str) -> dict[int, str]:
    """rid -> ``Endpoint/id`` of the active Endpoints a member is reached through."""
    found = {}
    for reference in careteams.member_endpoints(repo, member):
        stored = careteams.read_reference(repo, reference)
        if stored is not None and stored.json().get("status") == "active":
            found[stored.rid] = f"Endpoint/{stored.id}"
    return found


# -- median hours from discharge to the first notification delivered to the PCP ---------

def pcp_notifications(repo: Repository, visits: list[Visit], period: Period,
                      teams: list[dict[str, Any]]) -> list[Case]:
    """One case per discharge (class IMP, EMER or OBSENC, finished, discharged in the
    period); hit when a notification of the discharged version reached an Endpoint of a PCP
    on the patient's care team at discharge; excluded when no such PCP Endpoint exists."""
    cases = []
    for stay in visits:
        if not stay.is_discharge(DISCHARGE_CLASSES) or stay.discharged_at is None:
            continue
        month = period.month_of(stay.end) if stay.end else None
        if month is not None:
            cases.append(_pcp_case(repo, stay, month, teams))
    return cases


def _pcp_case(repo: Repository, stay: Visit, month: str,
              teams: list[dict[str, Any]]) -> Case:
    assert stay.discharged_at is not None
    endpoints: dict[int, str] = {}
    for team in teams:
        for participant in careteams.current_participants(team, stay.discharged_at):
            if is_pcp(participant):
                endpoints.update(endpoint_rids(repo, participant["member"]["reference"]))
    if not endpoints:
        return Case(month, stay.reference, False, excluded="no PCP endpoint")
    encounter_id = stay.reference.split("/", 1)[1]
    for sent in delivered(repo, "Encounter", encounter_id, set(endpoints)):
        if _is_finished(repo, encounter_id, sent.version_id):
            hours = round((sent.delivered_at - stay.discharged_at) / 3600, 2)
            return Case(month, stay.reference, True, {
                "delivery": sent.delivery, "endpoint": endpoints[sent.endpoint_rid],
                "version": sent.version_id, "hours": hours})
    return Case(month, stay.reference, False, {"endpoints": sorted(endpoints.values())})


def _is_finished(repo: Repository, encounter_id: str, version_id: int) -> bool:
    """Whether the notified version is one where the stay is finished (the discharge)."""
    body = repo.read_version("Encounter", encounter_id, version_id).json()
    return body.get("status") == "finished"


def median_hours(cases: list[Case]) -> float | None:
    hours = [c.evidence["hours"] for c in cases if c.hit and not c.excluded]
    return round(median(hours), 2) if hours else None


# -- share of care-team members whose systems hold the current plan version -------------

def plan_holders(repo: Repository, patient: str, teams: list[dict[str, Any]],
                 now: float) -> list[dict[str, Any]]:
    """For each active CarePlan of the patient: its current version and, per current
    care-team member with an active Endpoint, whether that version was delivered there."""
    members = {m for team in teams for m in careteams.current_members(team, now)}
    reachable = {m: rids for m in sorted(members) if (rids := endpoint_rids(repo, m))}
    plans = []
    for plan in careteams.search_all(repo, "CarePlan", [("patient", patient),
                                                         ("status", "active")]):
        version = int(plan["meta"]["versionId"])
        rows = [{"member": member, "endpoints": sorted(rids.values()),
                 "holds": any(d.version_id == version for d in
                              delivered(repo, "CarePlan", plan["id"], set(rids)))}
                for member, rids in reachable.items()]
        plans.append({"plan": f"CarePlan/{plan['id']}/_history/{version}", "members": rows})
    return plans


def share(plans: list[dict[str, Any]]) -> dict[str, Any]:
    """Members holding the current version / members with an Endpoint, over the plans."""
    members = [m for plan in plans for m in plan["members"]]
    holding = sum(1 for m in members if m["holds"])
    return {"numerator": holding, "denominator": len(members),
            "share": round(holding / len(members), 4) if members else None, "plans": plans}
