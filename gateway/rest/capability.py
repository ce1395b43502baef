"""The CapabilityStatement (``GET /metadata``): exactly what this server implements.

Built once from the resource types and the compiled search parameters, so what it lists is
what the search code supports (composite and special parameters are left out).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from gateway import __version__
from gateway.fhir.searchparams import registry
from gateway.fhir.types import RESOURCE_TYPES

_INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "history-type",
                 "create", "search-type"]
_COMMON_PARAMS = [("_count", "number"), ("_sort", "string"), ("_summary", "token"),
                  ("_elements", "string"), ("_total", "token")]


def _resource_entry(resource_type: str, rev: dict[str, list[str]]) -> dict[str, Any]:
    params = registry().for_type(resource_type)
    references = sorted(p.code for p in params.values() if p.type == "reference")
    return {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "referencePolicy": ["literal", "local", "enforced"],
        "searchInclude": ["*", *[f"{resource_type}:{code}" for code in references]],
        "searchRevInclude": sorted(rev.get(resource_type, [])),
        "searchParam": [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in sorted(params.values(), key=lambda p: p.code)
        ],
    }


def _revincludes() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for source in RESOURCE_TYPES:
        for param in registry().for_type(source).values():
            if param.type != "reference":
                continue
            for target in param.targets or ():
                found.setdefault(target, []).append(f"{source}:{param.code}")
    return found


@cache
def capability_statement(base: str) -> bytes:
    rev = _revincludes()
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "FHIR care-coordination gateway",
        "kind": "instance",
        "software": {"name": "fhir-care-gateway", "version": __version__},
        "implementation": {"description": "FHIR care-coordination gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "resource": [_resource_entry(t, rev) for t in sorted(RESOURCE_TYPES)],
            "interaction": [{"code": "transaction"}, {"code": "batch"},
                            {"code": "history-system"}],
            "searchParam": [{"name": n, "type": t} for n, t in _COMMON_PARAMS],
        }],
    }
    return orjson.dumps(statement)
