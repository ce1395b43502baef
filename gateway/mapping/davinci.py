"""Read a Da Vinci Unsolicited Notification message Bundle (HL7 Da Vinci Alerts IG, STU1.1:
guidance.html, "The Da Vinci Notification Message Bundle").

A ``message`` Bundle whose first entry is a MessageHeader with an event code from the
notification-event code system; ``MessageHeader.focus`` is the Encounter, bundled with the
Patient, Practitioners, Locations and Organization it references. Pure: checks the shape and
returns the parts, leaving identity and storage to the coordination layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from gateway.fhir.structure import conforms
from gateway.mapping.issues import MappingError, MessageRejected

EVENT_SYSTEM = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
EVENTS = {"notification-admit": "admit", "notification-transfer": "transfer",
          "notification-discharge": "discharge"}


@dataclass
class Notification:
    """The parts of one notification; ``bundled`` maps each entry's fullUrl and Type/id to
    its resource so references inside the Encounter can be followed."""

    event: str
    action: str
    message_id: str
    sender: str
    timestamp: float | None
    encounter: dict[str, Any]
    bundled: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def visit(self) -> dict[str, str]:
        first = (self.encounter.get("identifier") or [{}])[0]
        return {k: first[k] for k in ("system", "value") if k in first}

    @property
    def visit_key(self) -> str:
        return f"{self.visit.get('system', '')}|{self.visit['value']}"

    def resolve(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reference or "reference" not in reference:
            return None
        return self.bundled.get(reference["reference"])


def read_notification(bundle: dict[str, Any]) -> Notification:
    """The notification's parts; MessageRejected (structure) or MappingError (content)."""
    _validate(bundle)
    if bundle.get("type") != "message":
        raise MessageRejected("$process-message needs a Bundle of type 'message'.",
                              location="Bundle.type")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)]
    if not entries or entries[0]["resource"].get("resourceType") != "MessageHeader":
        raise MessageRejected("The first entry of a message Bundle must be a MessageHeader.",
                              location="Bundle.entry[0].resource")
    header = entries[0]["resource"]
    event = _event(header)
    bundled = _index(entries)
    focus = [bundled.get(f.get("reference", "")) for f in header.get("focus") or []]
    encounter = next((r for r in focus if r and r.get("resourceType") == "Encounter"), None)
    if encounter is None:
        raise MappingError("MessageHeader.focus must reference an Encounter in the Bundle.",
                           location="MessageHeader.focus")
    if not any(i.get("value") for i in encounter.get("identifier") or []):
        raise MappingError("The focus Encounter needs an identifier (the visit number).",
                           location="Encounter.identifier")
    return Notification(event, EVENTS[event], _message_id(bundle, header),
                        _sender(header), _epoch(bundle.get("timestamp")), encounter, bundled)


def _validate(bundle: dict[str, Any]) -> None:
    if bundle.get("resourceType") != "Bundle":
        raise MessageRejected("The body must be a FHIR Bundle.", location="Bundle")
    if conforms(bundle):
        return
    try:
        Bundle.model_validate(bundle)
    except (ValidationError, ValueError) as error:
        raise MessageRejected(f"The Bundle is not valid FHIR R4: {error}",
                              location="Bundle") from None


def _event(header: dict[str, Any]) -> str:
    coding = header.get("eventCoding") or {}
    if coding.get("system") != EVENT_SYSTEM or coding.get("code") not in EVENTS:
        raise MessageRejected(
            f"Unsupported event {coding.get('system')}|{coding.get('code')}; supported: "
            + ", ".join(f"{EVENT_SYSTEM}|{c}" for c in EVENTS),
            location="MessageHeader.eventCoding")
    return str(coding["code"])


def _index(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        resource = entry["resource"]
        if entry.get("fullUrl"):
            found[entry["fullUrl"]] = resource
        if resource.get("id"):
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def _message_id(bundle: dict[str, Any], header: dict[str, Any]) -> str:
    """Bundle.identifier (messaging.html#reliable: the message's identity), else the
    MessageHeader id."""
    identifier = bundle.get("identifier") or {}
    if identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    if header.get("id"):
        return f"MessageHeader/{header['id']}"
    raise MessageRejected("The message needs Bundle.identifier or a MessageHeader id so that "
                          "a resent message can be recognised.", location="Bundle.identifier")


def _sender(header: dict[str, Any]) -> str:
    source = header.get("source") or {}
    return str(source.get("endpoint") or (header.get("sender") or {}).get("reference") or "")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
