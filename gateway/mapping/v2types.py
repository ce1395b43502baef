"""HL7 v2 data types to FHIR R4 data types, as plain dicts later validated by the R4B models.

Follows the HL7 v2-to-FHIR data type maps (https://build.fhir.org/ig/HL7/v2-to-fhir/
datatype_maps.html): CX -> Identifier, XPN -> HumanName, XAD -> Address, XTN -> ContactPoint,
XCN -> Practitioner, PL -> Location, HD -> Organization identifier, DTM/TS -> dateTime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from gateway.mapping.v2message import Repetition, component, subcomponents

_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?"
                  r"([+-]\d{4})?$")


@dataclass(frozen=True)
class Instant:
    """An HL7 v2 DTM as FHIR dateTime text and (when it has a time) epoch seconds."""

    text: str
    epoch: float | None


def parse_dtm(value: str, zone: tzinfo) -> Instant | None:
    """HL7 v2 DTM/TS (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as FHIR dateTime.

    FHIR requires an offset when a time is given (R4 datatypes.html#dateTime); a v2 time
    without one is read in the sending facility's time zone (``zone``).
    """
    match = _DTM.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is None:
        try:
            datetime(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return None
        return Instant("-".join(p for p in (year, month, day) if p), None)
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour),
                          int(minute or 0), int(second or 0),
                          int((fraction or "0").ljust(6, "0")[:6]))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=_offset(offset) if offset else zone)
    text = moment.isoformat(timespec="milliseconds" if fraction else "seconds")
    return Instant(text, moment.timestamp())


def _offset(text: str) -> tzinfo:
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))


def zone_named(name: str) -> tzinfo:
    return UTC if name.upper() in ("UTC", "Z") else ZoneInfo(name)


def hd_text(rep: Repetition, index: int) -> tuple[str, str, str]:
    """An HD (namespace, universal id, universal id type) held in component ``index``."""
    parts = subcomponents(rep, index) if index else []
    parts = [*parts, "", "", ""]
    return parts[0], parts[1], parts[2]


def cx_identifier(rep: Repetition, system: str | None) -> dict[str, Any] | None:
    """CX -> Identifier: CX-1 value, CX-4 assigning authority (system), CX-5 type."""
    value = component(rep, 1)
    if not value:
        return None
    identifier: dict[str, Any] = {"value": value}
    if system:
        identifier["system"] = system
    type_code = component(rep, 5)
    if type_code:
        identifier["type"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": type_code}]}
    return identifier


def xpn_name(rep: Repetition) -> dict[str, Any] | None:
    """XPN -> HumanName: 1 family, 2 given, 3 further given, 4 suffix, 5 prefix, 7 use."""
    family = component(rep, 1)
    given = [g for g in (component(rep, 2), component(rep, 3)) if g]
    if not family and not given:
        return None
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    if component(rep, 4):
        name["suffix"] = [component(rep, 4)]
    if component(rep, 5):
        name["prefix"] = [component(rep, 5)]
    use = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname"}.get(component(rep, 7))
    if use:
        name["use"] = use
    return name


def xad_address(rep: Repetition) -> dict[str, Any] | None:
    """XAD -> Address: 1-2 lines, 3 city, 4 state, 5 postal code, 6 country, 7 type."""
    address: dict[str, Any] = {}
    lines = [line for line in (component(rep, 1), component(rep, 2)) if line]
    if lines:
        address["line"] = lines
    for index, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
        if component(rep, index):
            address[key] = component(rep, index)
    use = {"H": "home", "O": "work", "B": "work", "C": "temp"}.get(component(rep, 7))
    if use and address:
        address["use"] = use
    return address or None


def xtn_contact(rep: Repetition) -> dict[str, Any] | None:
    """XTN -> ContactPoint: XTN-1 (to v2.6) or XTN-12 / 6+7 (v2.7+) number, XTN-4 email,
    XTN-2 use (table 0201), XTN-3 equipment (table 0202)."""
    equipment = component(rep, 3)
    email = component(rep, 4)
    number = component(rep, 12) or component(rep, 1)
    if not number and component(rep, 7):
        number = f"{component(rep, 6)}{component(rep, 7)}"
    if equipment in ("Internet", "X.400") or (email and not number):
        return {"system": "email", "value": email or number} if (email or number) else None
    if not number:
        return None
    contact: dict[str, Any] = {"system": "fax" if equipment == "FX" else "phone",
                               "value": number}
    use = {"PRN": "home", "WPN": "work", "ORN": "home", "VHN": "temp",
           "EMR": "temp"}.get(component(rep, 2))
    if equipment == "CP":
        use = "mobile"
    if use:
        contact["use"] = use
    return contact


def xcn_practitioner(rep: Repetition, system: str | None) -> dict[str, Any] | None:
    """XCN -> Practitioner: 1 id, 2 family, 3 given, 4 middle, 5 suffix, 6 prefix,
    9 assigning authority."""
    identifier = component(rep, 1)
    name = xpn_name([subcomponents(rep, 2), subcomponents(rep, 3), subcomponents(rep, 4),
                     subcomponents(rep, 5), subcomponents(rep, 6)])
    if not identifier and name is None:
        return None
    practitioner: dict[str, Any] = {"resourceType": "Practitioner"}
    if identifier:
        practitioner["identifier"] = [{"value": identifier, **({"system": system}
                                                               if system else {})}]
    if name:
        practitioner["name"] = [name]
    return practitioner


def pl_location(rep: Repetition, system: str) -> dict[str, Any] | None:
    """PL -> Location: 1 point of care, 2 room, 3 bed, 4 facility (HD), 9 description.

    The identifier is the unit/room/bed path within the facility, so the same bed from two
    messages is one Location."""
    parts = [component(rep, i) for i in (1, 2, 3)]
    if not any(parts):
        return None
    path = "^".join(parts).rstrip("^")
    physical = "bd" if parts[2] else "ro" if parts[1] else "wa"
    name = component(rep, 9) or " ".join(p for p in parts if p)
    return {
        "resourceType": "Location",
        "identifier": [{"system": system, "value": path}],
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
            "code": physical}]},
    }
