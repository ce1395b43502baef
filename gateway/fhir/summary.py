"""``_summary`` and ``_elements`` (http://hl7.org/fhir/R4/search.html#summary).

Which elements are "summary" elements comes from the R4B models' element metadata.
A subsetted resource is tagged SUBSETTED (http://terminology.hl7.org/CodeSystem/v3-ObservationValue).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway.fhir.types import model_class

_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
              "code": "SUBSETTED", "display": "Resource encoded in summary mode"}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def _element_sets(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) by JSON name, for a type."""
    model = model_class(resource_type)
    if model is None:
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        key = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(key)
        if extra.get("element_required") or info.is_required():
            mandatory.add(key)
    return frozenset(summary), frozenset(mandatory)


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    resource["meta"] = meta
    return resource


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """Apply ``_summary=true|text|data`` (``false`` returns the resource unchanged)."""
    if mode == "false":
        return resource
    summary, mandatory = _element_sets(resource["resourceType"])
    if mode == "true":
        keep = summary | _ALWAYS
    elif mode == "text":
        keep = _ALWAYS | mandatory | {"text"}
    else:  # data
        return _tagged({k: v for k, v in resource.items() if k != "text"})
    return _tagged({k: v for k, v in resource.items() if k in keep})


def select_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """Keep the named top-level elements plus the mandatory ones (``_elements``)."""
    _, mandatory = _element_sets(resource["resourceType"])
    wanted = {e.split(".")[-1] if "." in e and e.split(".")[0] == resource["resourceType"]
              else e for e in elements}
    keep = _ALWAYS | mandatory | wanted
    return _tagged({k: v for k, v in resource.items() if k in keep})
