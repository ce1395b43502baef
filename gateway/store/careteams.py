"""Reading care teams: a patient's CareTeams, their current participants and the Endpoints
through which a member is reached.

Shared by sync (care-team routing decides who hears of a change) and timeline (measures ask
whether the PCP or every member heard of it), so both read membership the same way
(R4 careteam.html: ``participant.member``, ``participant.period``; practitionerrole.html and
organization.html: ``endpoint``).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.fhir.dates import period_range
from gateway.fhir.references import parse_reference
from gateway.search.request import SearchRequest, parse_search
from gateway.store import query
from gateway.store.repository import Repository, StoredResource

PAGE = 200


def search_all(repo: Repository, resource_type: str, params: list[tuple[str, str]],
               limit: int | None = None) -> list[dict[str, Any]]:
    """Bodies of the resources a search matches: every page, or the first ``limit``. Routing
    reads them all: a member left out would silently miss its patient's notifications."""
    request: SearchRequest = parse_search(resource_type, params, base_url=repo.base_url)
    request.count = min(limit or PAGE, PAGE)
    found: list[dict[str, Any]] = []
    while True:
        page = query.run_page(repo.conn, request)
        stored = repo.load_many(page.rids)
        found.extend(stored[rid].json() for rid in page.rids if rid in stored)
        if page.next_cursor is None or (limit is not None and len(found) >= limit):
            return found[:limit] if limit is not None else found
        request.cursor = page.next_cursor


def patient_teams(repo: Repository, patient: str) -> list[dict[str, Any]]:
    """The patient's CareTeams whose status is active (or absent)."""
    return [team for team in search_all(repo, "CareTeam", [("patient", patient)])
            if team.get("status", "active") == "active"]


def current_participants(team: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Participants with a member reference whose ``period`` covers ``now`` (open ends
    count as covering)."""
    current = []
    for participant in team.get("participant") or []:
        span = period_range(participant.get("period") or {})
        if span is not None and not span[0] <= now <= span[1]:
            continue
        if isinstance((participant.get("member") or {}).get("reference"), str):
            current.append(participant)
    return current


def current_members(team: dict[str, Any], now: float) -> list[str]:
    """References of the members current at ``now``."""
    return [p["member"]["reference"] for p in current_participants(team, now)]


def member_endpoints(repo: Repository, member: str) -> list[str]:
    """Endpoint references of a member: an Organization's or PractitionerRole's own, a
    Practitioner's through its PractitionerRoles; other members have none."""
    parsed = parse_reference(member)
    if parsed is None:
        return []
    if parsed.type == "Practitioner":
        roles = search_all(repo, "PractitionerRole",
                           [("practitioner", f"Practitioner/{parsed.id}")])
    elif parsed.type in ("Organization", "PractitionerRole"):
        stored = read_reference(repo, f"{parsed.type}/{parsed.id}")
        roles = [stored.json()] if stored is not None else []
    else:
        return []
    return [e["reference"] for role in roles for e in role.get("endpoint") or []
            if isinstance(e, dict) and isinstance(e.get("reference"), str)]


def read_reference(repo: Repository, reference: str) -> StoredResource | None:
    """The current version a local reference points to, or None (unknown, deleted)."""
    parsed = parse_reference(reference)
    if parsed is None:
        return None
    try:
        return repo.read(parsed.type, parsed.id)
    except GatewayError:  # not found, deleted
        return None
