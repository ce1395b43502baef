"""Readable text for FHIR elements: names, codes, references, dates.

Display text comes from the element itself where FHIR carries one (``CodeableConcept.text``,
``Coding.display``, ``Reference.display``), else from the referenced resource's name, else
the code or reference itself, so a summary is never empty.
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.dates import parse_range

Names = dict[str, str]  # "Type/id" -> display name


def concept(value: Any) -> str:
    """A CodeableConcept (or a list of them) as text."""
    if isinstance(value, list):
        return ", ".join(t for t in (concept(v) for v in value) if t)
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding["code"]).replace("-", " ")
    return ""


def human_name(names: Any) -> str:
    """The first HumanName as "Given Family"."""
    for name in names or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text
    return ""


def resource_name(body: dict[str, Any]) -> str:
    """The name a person would use for a resource (Patient, Practitioner, Organization...)."""
    name = body.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, list):
        return human_name(name)
    for key in ("description", "title"):
        if isinstance(body.get(key), dict):
            return concept(body[key])
        if isinstance(body.get(key), str):
            return str(body[key])
    return concept(body.get("code"))


def reference(value: Any, names: Names | None = None) -> str:
    """A Reference as text: its display, the target's name, or the reference itself."""
    if not isinstance(value, dict):
        return ""
    ref = value.get("reference")
    if value.get("display"):
        return str(value["display"])
    if names and isinstance(ref, str) and names.get(ref):
        return names[ref]
    return str(ref or concept(value.get("identifier", {}).get("type")) or "")


def epoch(value: Any) -> float | None:
    """The start of a FHIR date/dateTime as epoch seconds, or None."""
    found = parse_range(value) if isinstance(value, str) else None
    return found[0] if found else None


def day(value: Any) -> str:
    """A FHIR date or dateTime as its date part (2026-11-20), for summaries."""
    return str(value)[:10] if isinstance(value, str) else ""


def parse_end(value: Any) -> float | None:
    """The end of a FHIR date/dateTime as epoch seconds (a due date is due all that day)."""
    found = parse_range(value) if isinstance(value, str) else None
    return found[1] if found else None
