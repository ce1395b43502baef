"""Map one HL7 v2 ADT message to FHIR R4 objects, following mappings/hl7v2/adt.yaml.

The result holds the Patient, Practitioner, Location and Organization resources and the
Encounter elements this message states, as JSON-shaped dicts, each validated with its
``fhir.resources.R4B`` model (an invalid one is an AE naming the v2 field); turning them
into stored, versioned resources (ids, references, event order) is the coordination layer's
work. Unknown codes are kept as the original coding and text and reported as issues.

Why dicts and not the model objects: the store takes JSON-shaped resources, and dumping a
model back to JSON cost more than validating it. Validation is the compiled structural check
(``gateway.fhir.structure``), with the model itself only when that check refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from pydantic import ValidationError

from gateway.fhir.structure import conforms
from gateway.mapping import v2types
from gateway.mapping.header import Header, read_header
from gateway.mapping.issues import MappingError, MappingIssue, MessageRejected
from gateway.mapping.rules import AdtRules, MappingSet
from gateway.mapping.v2message import FieldPath, Repetition, V2Message, component

PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
Resource = dict[str, Any]


@dataclass
class MappedAdt:
    """Everything one ADT message says, as FHIR."""

    header: Header
    action: str
    status: str | None
    patient: Resource
    encounter: dict[str, Any] = field(default_factory=dict)
    visit: dict[str, str] | None = None
    location: Resource | None = None
    participants: list[tuple[str, Resource]] = field(default_factory=list)
    organization: Resource | None = None
    prior_patient_identifiers: list[dict[str, Any]] = field(default_factory=list)
    merges: list[tuple[Resource, list[dict[str, Any]]]] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)

    @property
    def visit_key(self) -> str | None:
        return f"{self.visit.get('system', '')}|{self.visit['value']}" if self.visit else None

    def as_json(self) -> dict[str, Any]:
        """A plain view for golden files and logs."""
        def dump(resource: Resource | None) -> Any:
            return None if resource is None else copy_of(resource)

        return {
            "messageType": self.header.message_type, "action": self.action,
            "status": self.status, "eventTime": (self.header.event_time.text
                                                 if self.header.event_time else None),
            "patient": dump(self.patient), "visit": self.visit, "encounter": self.encounter,
            "location": dump(self.location), "organization": dump(self.organization),
            "participants": [{"role": r, "practitioner": dump(p)} for r, p in self.participants],
            "priorPatientIdentifiers": self.prior_patient_identifiers,
            **({"merges": [{"patient": dump(p), "prior": prior} for p, prior in self.merges]}
               if len(self.merges) > 1 else {}),
            "issues": [{"location": i.location, "severity": i.severity, "message": i.message}
                       for i in self.issues],
        }


def map_adt(message: V2Message, mappings: MappingSet, header: Header | None = None) -> MappedAdt:
    """Map an ADT message; MessageRejected (AR) for unsupported types, MappingError (AE)
    when a required segment, field or code is missing or unknown. ``header`` is
    ``read_header(message, mappings)`` when the caller has read it already."""
    header = header or read_header(message, mappings)
    rules = mappings.for_facility(header.sending_facility)
    action = _action(header, rules)
    context = _Context(message, rules, header)
    mapped = MappedAdt(header, action, context.status(), context.patient(),
                       organization=context.organization())
    if action == "merge-patient":
        mapped.merges = _merges(message, rules, header, context)
        mapped.prior_patient_identifiers = mapped.merges[0][1]
    else:
        mapped.visit = context.visit()
        mapped.encounter = context.encounter()
        mapped.location = context.location()
        mapped.participants = context.participants()
    mapped.issues = context.issues
    return mapped


def copy_of(resource: Resource) -> Resource:
    """A deep copy of a JSON-shaped resource (through orjson: cheaper than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(resource))


def _merges(message: V2Message, rules: AdtRules, header: Header,
            context: _Context) -> list[tuple[Resource, list[dict[str, Any]]]]:
    """A39/A40 carry one PID/MRG group per pair of records to merge."""
    segment = str(rules.section("patient").get("segment", "PID"))
    merges = []
    for view in message.groups(segment):
        group = _Context(view, rules, header)
        group.issues = context.issues
        merges.append((group.patient(), group.prior_identifiers()))
    return merges


def _action(header: Header, rules: AdtRules) -> str:
    """The trigger's action (HL7 v2 table 0003); other message types are refused (AR)."""
    if header.message_code != rules.rules.get("message_type", "ADT"):
        raise MessageRejected(f"Unsupported message type {header.message_type!r}.",
                              location="MSH-9.1", hl7_error_code="200")
    event = (rules.section("events")).get(header.trigger)
    if event is None:
        raise MessageRejected(f"Unsupported trigger event {header.trigger!r}.",
                              location="MSH-9.2", hl7_error_code="201")
    return str(event["action"])


class _Context:
    """One message being mapped under one facility's rules; collects issues."""

    def __init__(self, message: V2Message, rules: AdtRules, header: Header) -> None:
        self.message = message
        self.rules = rules
        self.header = header
        self.zone = v2types.zone_named(str(rules.rules.get("timezone") or "UTC"))
        self.issues: list[MappingIssue] = []

    # -- identifiers ---------------------------------------------------------------------

    def system_for(self, namespace: str, universal: str = "", kind: str = "") -> str | None:
        """Assigning authority -> Identifier.system: a configured URI, an ISO OID as
        urn:oid, else the default template (HL7 v2-to-FHIR, CX -> Identifier)."""
        systems = self.rules.section("identifier_systems")
        known = systems.get("authorities") or {}
        if namespace in known:
            return str(known[namespace])
        if universal and kind.upper() == "ISO":
            return f"urn:oid:{universal}"
        if namespace:
            return str(systems.get("default", "urn:hl7v2:authority:{authority}")).format(
                authority=namespace)
        return None

    def identifiers(self, rule: dict[str, Any], authority_index: int) -> list[dict[str, Any]]:
        fallback = self.message.value(str(rule["authority_fallback"])) \
            if rule.get("authority_fallback") else self.header.sending_facility
        found = []
        for rep in self.reps(rule):
            namespace, universal, kind = v2types.hd_text(rep, authority_index)
            system = self.system_for(namespace or fallback, universal, kind)
            identifier = v2types.cx_identifier(rep, system)
            if identifier:
                found.append(identifier)
        if not found and rule.get("required"):
            raise MappingError(f"{rule['field']} is required.", location=str(rule["field"]),
                               hl7_error_code="101", issues=self.issues)
        return found

    # -- resources -----------------------------------------------------------------------

    def patient(self) -> Resource:
        rules = self.rules.section("patient")
        self.require_segment(str(rules.get("segment", "PID")))
        data: dict[str, Any] = {"resourceType": "Patient",
                                "identifier": self.identifiers(rules["identifier"], 4)}
        for key, converter in (("name", v2types.xpn_name), ("address", v2types.xad_address),
                               ("telecom", v2types.xtn_contact)):
            if key in rules:
                values = [v for v in (converter(r) for r in self.reps(rules[key])) if v]
                if values:
                    data[key] = values
        if "birthDate" in rules:
            born = v2types.parse_dtm(self.value(rules["birthDate"]), self.zone)
            if born:
                data["birthDate"] = born.text[:10]
        if "gender" in rules:
            gender = self.code(rules["gender"])
            if gender:
                data["gender"] = gender
        return self.build(Patient, data, "PID")

    def prior_identifiers(self) -> list[dict[str, Any]]:
        rules = self.rules.section("merge")
        self.require_segment(str(rules.get("segment", "MRG")))
        return self.identifiers(rules["prior_identifier"], 4)

    def visit(self) -> dict[str, str]:
        rules = self.rules.section("encounter")
        self.require_segment(str(rules.get("segment", "PV1")))
        identifier = self.identifiers(rules["identifier"], 4)[0]
        return {k: identifier[k] for k in ("system", "value") if k in identifier}

    def status(self) -> str | None:
        """Encounter.status for the trigger, None when the trigger keeps it (A08)."""
        rule = self.rules.section("encounter").get("status") or {}
        found = self.rules.table(rule["conceptmap"]).translate(self.header.trigger) \
            if rule.get("conceptmap") else None
        return found.code if found else None

    def encounter(self) -> dict[str, Any]:
        elements: dict[str, Any] = {}
        for target, rule in (self.rules.section("encounter").get("elements") or {}).items():
            value = self.element(rule)
            if value is not None:
                _assign(elements, str(target), value)
        self.build(Encounter, {"resourceType": "Encounter", "status": "unknown",
                               "class": {"code": "AMB"}, **elements}, "PV1")
        return elements

    def location(self) -> Resource | None:
        rule = self.rules.section("encounter").get("location")
        reps = self.reps(rule) if rule else []
        if not reps:
            return None
        namespace = component(reps[0], 4) or self.header.sending_facility
        template = str(self.rules.section("identifier_systems").get(
            "location", "urn:hl7v2:location:{authority}"))
        data = v2types.pl_location(reps[0], template.format(authority=namespace))
        return self.build(Location, data, str(rule["field"])) if data else None

    def participants(self) -> list[tuple[str, Resource]]:
        found = []
        for rule in self.rules.section("encounter").get("participants") or []:
            for rep in self.reps(rule):
                namespace, universal, kind = v2types.hd_text(rep, 9)
                system = self.system_for(namespace or self.header.sending_facility,
                                         universal, kind)
                data = v2types.xcn_practitioner(rep, system)
                if data:
                    found.append((str(rule["role"]),
                                  self.build(Practitioner, data, str(rule["field"]))))
        return found

    def organization(self) -> Resource | None:
        rule = self.rules.section("encounter").get("service_provider")
        reps = self.reps(rule) if rule else []
        if not reps or not component(reps[0], 1):
            return None
        namespace, universal, kind = v2types.hd_text(reps[0], 1) if len(reps[0]) == 1 else (
            component(reps[0], 1), component(reps[0], 2), component(reps[0], 3))
        facility_system = str(self.rules.section("identifier_systems").get(
            "facility", "urn:hl7v2:facility"))
        identifiers = [{"system": facility_system, "value": namespace}]
        if universal and kind.upper() == "ISO":
            identifiers.append({"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{universal}"})
        return self.build(Organization, {"resourceType": "Organization",
                                         "identifier": identifiers, "name": namespace},
                          str(rule["field"]))

    # -- elements ------------------------------------------------------------------------

    def element(self, rule: dict[str, Any]) -> Any:
        kind = rule.get("type", "string")
        if kind == "dateTime":
            return self.date_time(rule)
        if kind in ("Coding", "CodeableConcept"):
            return self.coded(rule, kind)
        if kind == "code":
            return self.code(rule)
        return self.value(rule) or None

    def date_time(self, rule: dict[str, Any]) -> str | None:
        text = self.value(rule)
        if not text:
            return None
        found = v2types.parse_dtm(text, self.zone)
        if found is None:
            self.report(rule, f"{rule['field']} {text!r} is not an HL7 v2 date/time; ignored.")
            return None
        return found.text

    def code(self, rule: dict[str, Any]) -> str | None:
        code = self.value(rule)
        if not code:
            return None
        found = self.rules.table(rule["conceptmap"]).translate(code)
        if found is None:
            self.unknown(rule, code)
            return None
        return found.code

    def coded(self, rule: dict[str, Any], kind: str) -> dict[str, Any] | None:
        """A code through its ConceptMap; an unknown one is kept as the original v2 coding
        (and text), or refused with AE when the rule says ``required``."""
        reps = self.reps(rule)
        code = component(reps[0], 1) if reps else ""
        if not code:
            if rule.get("required"):
                raise MappingError(f"{rule['field']} is required.", location=str(rule["field"]),
                                   hl7_error_code="101", issues=self.issues)
            return None
        table = self.rules.table(rule["conceptmap"])
        original: dict[str, Any] = {"code": code}
        if table.source_system:
            original["system"] = table.source_system
        if component(reps[0], 2):
            original["display"] = component(reps[0], 2)
        found = table.translate(code)
        if found is None:
            self.unknown(rule, code)
            return original if kind == "Coding" else {"coding": [original], "text": code}
        target = {k: v for k, v in (("system", found.system), ("code", found.code),
                                    ("display", found.display)) if v}
        if kind == "Coding":
            return target
        return {"coding": [target, original], "text": original.get("display", code)}

    def unknown(self, rule: dict[str, Any], code: str) -> None:
        message = (f"{rule['field']} code {code!r} is not in ConceptMap "
                   f"{rule['conceptmap']!r}.")
        if rule.get("required"):
            raise MappingError(message, location=str(rule["field"]), hl7_error_code="103",
                               issues=self.issues)
        self.report(rule, message + " Kept as the original code.")

    # -- helpers -------------------------------------------------------------------------

    def reps(self, rule: dict[str, Any]) -> list[Repetition]:
        return self.message.repetitions(FieldPath.parse(str(rule["field"])))

    def value(self, rule: dict[str, Any]) -> str:
        return self.message.value(str(rule["field"]))

    def report(self, rule: dict[str, Any], message: str) -> None:
        self.issues.append(MappingIssue(str(rule["field"]), message))

    def require_segment(self, segment: str) -> None:
        if not self.message.has(segment):
            raise MappingError(f"The {segment} segment is required.", location=segment,
                               hl7_error_code="100", issues=self.issues)

    def build(self, model: Any, data: Resource, location: str) -> Resource:
        """``data``, checked against its R4B ``model``: MappingError (AE) when invalid."""
        try:
            _validate(model, data)
        except (ValidationError, ValueError) as error:
            raise MappingError(f"{location}: the mapped {data['resourceType']} is not valid "
                               f"FHIR: {error}", location=location, hl7_error_code="102",
                               issues=self.issues) from None
        return data


def _validate(model: Any, data: Resource) -> None:
    """The compiled structural check first; the R4B model, whose errors name the element at
    fault, only when that check refuses."""
    if data.get("resourceType") == model.get_resource_type() and conforms(data):
        return
    model.model_validate(data)


def _assign(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts."""
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
