"""Care-team roster (``mappings/schemas/careteam.schema.json``) -> FHIR R4 CareTeam, with a
PractitionerRole per practitioner who acts for an organization. Pure: no database, no HTTP.

Members become ``CareTeam.participant`` (R4 careteam.html): ``role`` through the
careteam-role ConceptMap (SNOMED CT / NUCC, as US Core CareTeam binds it), ``member`` a
Practitioner or, for family caregivers, a RelatedPerson; ``onBehalfOf`` the member's
Organization; ``period``. Each participant's element id is the member's source key, so the
workflow can tell who left the roster and end their participation instead of dropping them.
"""

from __future__ import annotations

from typing import Any

from gateway.mapping import plancommon as pc
from gateway.mapping.planrules import FormatRules
from gateway.mapping.planschema import check


def map_careteam(rules: FormatRules, document: Any) -> pc.MappedDocument:
    """Validate ``document`` against its schema, then map it."""
    check(rules.validator, document)
    pc.check_unique([participant_key(m) for m in document["members"]], "/members")
    source = document["source"]
    identifier = {"system": rules.system("roster", source=source),
                  "value": document["rosterId"]}
    mapped = pc.MappedDocument("careteam", identifier, pc.patient(rules, document["patient"]),
                               ended_on=document.get("asOf"))
    section = rules.section("careteam")
    team_id = pc.stable_id("CareTeam", identifier)
    participants = [_participant(rules, mapped, source, i, member)
                    for i, member in enumerate(document["members"])]
    managing = (mapped.party(pc.organization(rules, document["managingOrganization"], source))
                if document.get("managingOrganization") else None)
    mapped.resources.insert(0, pc.pruned({
        "resourceType": "CareTeam", "id": team_id,
        "identifier": [identifier],
        "status": pc.code(rules, section["status"], document.get("status"), "/status",
                          mapped.issues),
        "category": [{"coding": [dict(section["category"])]}] if section.get("category")
        else [],
        "name": document.get("name"),
        "subject": {"reference": pc.PATIENT},
        "participant": participants,
        "managingOrganization": [managing] if managing else [],
    }))
    return mapped


def participant_key(member: dict[str, Any]) -> str:
    """The participant's element id: the member's NPI, else their source id."""
    key = f"npi-{member['npi']}" if member.get("npi") else f"id-{member['id']}"
    return "".join(c if c.isalnum() or c in "-." else "-" for c in key)[:64]


def _participant(rules: FormatRules, mapped: pc.MappedDocument, source: str, index: int,
                 member: dict[str, Any]) -> dict[str, Any]:
    section = rules.section("careteam")
    pointer = f"/members/{index}"
    role = pc.concept(rules, section["role"], member["role"], None, f"{pointer}/role",
                      mapped.issues)
    org = (mapped.party(pc.organization(rules, member["organization"], source))
           if member.get("organization") else None)
    if member["role"] in (rules.rules.get("related_person_roles") or []):
        who = mapped.party(_related_person(rules, member, source))
        org = None  # onBehalfOf is for practitioners (R4 ctm-1)
    else:
        practitioner = pc.practitioner(rules, member, source)
        who = mapped.party(practitioner)
        if org is not None:
            _practitioner_role(mapped, practitioner, who, org, role)
    lead = section.get("lead_extension")
    return pc.pruned({
        "id": participant_key(member),
        "extension": [{"url": lead, "valueBoolean": True}] if member.get("lead") and lead
        else [],
        "role": [role],
        "member": who,
        "onBehalfOf": org,
        "period": member.get("period"),
    })


def _related_person(rules: FormatRules, member: dict[str, Any], source: str) -> dict[str, Any]:
    identifier = {"system": rules.system("related_person", source=source),
                  "value": member.get("id") or member["npi"]}
    relationship = []
    if member.get("relationship"):
        relationship = [{"coding": [{"system": rules.rules["relationship_system"],
                                     "code": member["relationship"]}]}]
    return pc.pruned({
        "resourceType": "RelatedPerson", "identifier": [identifier],
        "patient": {"reference": pc.PATIENT},
        "relationship": relationship,
        "name": pc.human_name(member),
        "telecom": pc.telecom(member),
    })


def _practitioner_role(mapped: pc.MappedDocument, practitioner: dict[str, Any],
                       who: dict[str, str], org: dict[str, str], role: dict[str, Any]) -> None:
    """The member's role at their organization (R4 practitionerrole.html), one per
    (practitioner, organization, role), owned by the roster."""
    first = practitioner["identifier"][0]
    identifier = {"system": f"{first['system']}#role",
                  "value": f"{first['value']}|{org['reference']}|{role['coding'][0]['code']}"}
    mapped.add({
        "resourceType": "PractitionerRole", "id": pc.stable_id("PractitionerRole", identifier),
        "active": True, "practitioner": who, "organization": org, "code": [role],
        **({"telecom": practitioner["telecom"]} if practitioner.get("telecom") else {}),
    })
