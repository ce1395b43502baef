"""The MSH (and EVN) facts every inbound message is stored and acknowledged by.

HL7 v2.5 section 2.14.9: MSH-3/4 sending application/facility, MSH-7 message time, MSH-9
type, MSH-10 control id, MSH-11 processing id, MSH-12 version, MSH-15/16 accept / application
acknowledgment type (table 0155).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mapping.rules import MappingSet
from gateway.mapping.v2message import V2Message
from gateway.mapping.v2types import Instant, parse_dtm, zone_named


@dataclass(frozen=True)
class Header:
    sending_application: str
    sending_facility: str
    control_id: str
    message_code: str
    trigger: str
    version: str
    processing_id: str
    accept_ack: str
    application_ack: str
    event_time: Instant | None

    @property
    def sender(self) -> str:
        """MSH-3^MSH-4: with MSH-10, identifies a message for duplicate detection."""
        return f"{self.sending_application}^{self.sending_facility}"

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code


def read_header(message: V2Message, mappings: MappingSet) -> Header:
    """The header, with the event time (EVN-2, else MSH-7) read in the facility's zone."""
    facility = message.value("MSH-4")
    trigger = message.value("MSH-9.2") or message.value("EVN-1")
    rules = mappings.for_facility(facility)
    zone = zone_named(str(rules.rules.get("timezone") or "UTC"))
    event_time = None
    for path in rules.rules.get("event_time") or ["MSH-7"]:
        found = parse_dtm(message.value(str(path)), zone)
        if found is not None and found.epoch is not None:
            event_time = found
            break
    return Header(
        sending_application=message.value("MSH-3"), sending_facility=facility,
        control_id=message.value("MSH-10"), message_code=message.value("MSH-9.1"),
        trigger=trigger, version=message.value("MSH-12"),
        processing_id=message.value("MSH-11"), accept_ack=message.value("MSH-15"),
        application_ack=message.value("MSH-16"), event_time=event_time)
