"""What the plan and roster mappings share: the mapped document, reported issues, code
translation that never drops a code, identifiers, stable ids and the parties a document names.

Resources a document owns (CarePlan, Goal, Condition, Task, CareTeam, PractitionerRole) get
ids derived from their source identifiers, so a re-sent document addresses the same resources
(upsert by business identifier, as the ADT mapping derives an Encounter from its visit
number). People and organizations (Patient, Practitioner, Organization, RelatedPerson) are
*parties*: the mapping names them by identifier with a placeholder reference
``urn:party:...`` and the workflow finds or creates them, sharing them with the ADT feed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.issues import MappingError, MappingIssue
from gateway.mapping.planrules import FormatRules

PATIENT = "urn:party:patient"
PARTY_PREFIX = "urn:party:"


@dataclass
class MappedDocument:
    """A source document mapped: owned resources (with ids) and the parties they name."""

    kind: str
    identifier: dict[str, str]
    patient: dict[str, Any]
    parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)
    ended_on: str | None = None
    # type -> {element, value, final}: what a resource dropped from the document becomes.
    on_removal: dict[str, dict[str, Any]] = field(default_factory=dict)

    def party(self, resource: dict[str, Any]) -> dict[str, str]:
        """A placeholder reference to ``resource`` (by its first identifier)."""
        first = resource["identifier"][0]
        key = f"{PARTY_PREFIX}{resource['resourceType']}:{first['system']}|{first['value']}"
        self.parties.setdefault(key, resource)
        return {"reference": key}

    def add(self, resource: dict[str, Any]) -> dict[str, str]:
        self.resources.append(resource)
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def stable_id(resource_type: str, identifier: dict[str, str]) -> str:
    """A resource id derived from a business identifier (FHIR ids: 64 chars at most)."""
    digest = hashlib.sha256(f"{resource_type}|{identifier['system']}|{identifier['value']}"
                            .encode()).hexdigest()[:32]
    return f"cm-{digest}"


def code(rules: FormatRules, rule: dict[str, Any], value: str | None, pointer: str,
         issues: list[MappingIssue]) -> str | None:
    """A ``code`` element through the rule's ConceptMap. Unknown: the rule's default, else
    a warning (an error when the rule is ``required``, since a required binding cannot hold
    an unknown code)."""
    if value is None:
        return rule.get("default")
    found = rules.table(rule["conceptmap"]).translate(value)
    if found is not None:
        return found.code
    message = f"{value!r} is not in ConceptMap {rule['conceptmap']}"
    if rule.get("required"):
        raise MappingError(f"{pointer}: {message}", location=pointer, hl7_error_code="103")
    default = rule.get("default")
    issues.append(MappingIssue(pointer, message + (f"; {default!r} used" if default else "")))
    return default


def concept(rules: FormatRules, rule: dict[str, Any], value: str, text: str | None,
            pointer: str, issues: list[MappingIssue]) -> dict[str, Any]:
    """A CodeableConcept: the translation (when known) and always the source code and text,
    so an unknown code is kept, never dropped, and reported as a warning."""
    table = rules.table(rule["conceptmap"])
    named = table.source_display(value)
    source = {"system": table.source_system, "code": value, "display": named}
    source = {k: v for k, v in source.items() if v}
    found = table.translate(value)
    codings = [source]
    if found is not None:
        target = {"system": found.system, "code": found.code, "display": found.display}
        codings.insert(0, {k: v for k, v in target.items() if v})
    else:
        issues.append(MappingIssue(pointer, f"{value!r} is not in ConceptMap "
                                            f"{rule['conceptmap']}; kept as text"))
    display = text or named or (found.display if found is not None and found.display else value)
    return {"coding": codings, "text": display}


def check_unique(keys: list[str], pointer: str) -> None:
    """Ids a document uses for its parts must differ: each names one resource (or one
    participant), so a repeated id would write one thing twice."""
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            where = f"{pointer}/{index}"
            raise MappingError(f"{where}: the id {key!r} is used twice", location=where,
                               hl7_error_code="207")
        seen.add(key)


def human_name(person: dict[str, Any]) -> list[dict[str, Any]]:
    name = {k: person[k] for k in ("family", "given") if person.get(k)}
    return [name] if name else []


def telecom(person: dict[str, Any]) -> list[dict[str, str]]:
    points = [("phone", person.get("phone")), ("email", person.get("email")),
              ("url", person.get("endpoint"))]
    return [{"system": s, "value": v} for s, v in points if v]


def patient(rules: FormatRules, source: dict[str, Any]) -> dict[str, Any]:
    """The Patient named by the document: its identifiers (an ``authority`` mapped as the
    ADT feed maps PID-3.4) and any demographics given, used only to create a new record."""
    systems = rules.section("identifier_systems")
    identifiers = []
    for given in source["identifiers"]:
        system = given.get("system")
        if system is None:
            authority = given["authority"]
            system = (systems.get("patient_authorities") or {}).get(authority) or \
                str(systems["patient_authority_default"]).format(authority=authority)
        identifiers.append({"system": system, "value": given["value"]})
    body: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers}
    if human_name(source):
        body["name"] = human_name(source)
    if source.get("birthDate"):
        body["birthDate"] = source["birthDate"]
    return body


def _party_identifiers(rules: FormatRules, party: dict[str, Any], kind: str,
                       source: str) -> list[dict[str, Any]]:
    """A party's NPI and its local id in the source system, whichever it has."""
    identifiers = []
    if party.get("npi"):
        identifiers.append({"system": rules.system("npi"), "value": party["npi"]})
    if party.get("id"):
        identifiers.append({"system": rules.system(kind, source=source),
                            "value": party["id"]})
    return identifiers


def organization(rules: FormatRules, org: dict[str, Any], source: str) -> dict[str, Any]:
    """An Organization by NPI, else by the source's local id."""
    identifiers = _party_identifiers(rules, org, "organization", source)
    body: dict[str, Any] = {"resourceType": "Organization", "identifier": identifiers}
    if org.get("name"):
        body["name"] = org["name"]
    return body


def practitioner(rules: FormatRules, person: dict[str, Any], source: str) -> dict[str, Any]:
    """A Practitioner by NPI, else by the source's local id (found, not duplicated)."""
    identifiers = _party_identifiers(rules, person, "practitioner", source)
    body: dict[str, Any] = {"resourceType": "Practitioner", "identifier": identifiers}
    for key, value in (("name", human_name(person)), ("telecom", telecom(person))):
        if value:
            body[key] = value
    return body


def pruned(node: Any) -> Any:
    """``node`` without empty values (FHIR forbids empty elements: R4 json.html)."""
    if isinstance(node, dict):
        out = {k: pruned(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(node, list):
        return [v for v in (pruned(i) for i in node) if v not in (None, "", [], {})]
    return node
