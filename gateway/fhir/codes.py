"""Required-binding code checks for FHIR R4 resources.

FHIR R4 says that an element of type ``code`` bound with strength *required* "SHALL" hold a code
from the bound value set (http://hl7.org/fhir/R4/terminologies.html#required). The
``fhir.resources`` pydantic models only check that such values are strings, so e.g.
``Encounter.status = "bogus"`` would be stored and served as if it were valid FHIR. This module
closes that gap for the value sets that can be expanded from the core specification alone.

The rules are data, not code: ``data/required-codes.json`` is generated from the official
StructureDefinitions, ValueSets and CodeSystems by ``scripts/build_required_codes.py`` (see that
script for the file layout). At first use the table is turned into a graph of plain dicts whose
values are either child nodes, code sets or a marker for nested resources, so checking a
resource is a single walk over the keys actually present in its JSON. Keys not in the table are
ignored on purpose: structural validation happens elsewhere, this module only answers "are the
required codes valid?". Primitive extensions (``_status``) are ignored for the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Final, TypeAlias

__all__ = ["CodeIssue", "check_codes", "checked_resource_types", "implied_system"]

_DATA_PACKAGE: Final = "gateway.fhir.data"
_DATA_FILE: Final = "required-codes.json"
_RESOURCE_SPEC: Final = "Resource"  # table marker for elements holding a nested resource
_MAX_LISTED: Final = 10  # codes listed in a message before it is truncated


@dataclass(frozen=True, slots=True)
class CodeIssue:
    """A code that is not in the value set its element is bound to (strength: required).

    ``expression`` is a FHIRPath-style location (choice elements use their JSON name, e.g.
    ``Observation.valueQuantity.comparator``) so callers can put it straight into
    ``OperationOutcome.issue.expression``.
    """

    expression: str
    message: str


class _CodeSet:
    """Allowed codes of one value set, plus the pre-rendered hint used in messages.

    Rendering the hint once at load time keeps the error path cheap and the messages stable.
    """

    __slots__ = ("codes", "expected", "system", "url")

    def __init__(self, url: str, codes: list[str], system: str | None) -> None:
        self.url = url
        self.codes = frozenset(codes)
        self.system = system
        listed = ", ".join(codes[:_MAX_LISTED])
        if len(codes) > _MAX_LISTED:
            listed += f", ... ({len(codes) - _MAX_LISTED} more, see {url})"
        self.expected = listed


class _NestedResource:
    """Marker for elements of type Resource (``contained``, ``Bundle.entry.resource``, ...)."""

    __slots__ = ()


_NESTED: Final = _NestedResource()

# A node maps JSON keys to what their values must be checked against. Child nodes are the
# very same dict objects shared by every user of a datatype/backbone element, so recursive
# structures (Extension.extension, Questionnaire.item.item) are simply cycles in the graph.
_Node: TypeAlias = dict[str, Any]  # values: _Node | _CodeSet | _NestedResource


@cache
def _resource_nodes() -> dict[str, _Node]:
    """Load the generated table once and link it into a graph keyed by resourceType.

    Cached so the JSON is parsed and the graph built only on first use (imports stay cheap).
    """
    raw = json.loads(files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_bytes())
    code_sets = [_CodeSet(url, codes, system) for url, codes, system in raw["valueSets"]]
    types: dict[str, _Node] = {name: {} for name in raw["types"]}

    def link(spec: int | str) -> _Node | _CodeSet | _NestedResource:
        if isinstance(spec, int):
            return code_sets[spec]
        if spec == _RESOURCE_SPEC:
            return _NESTED
        return types[spec]

    for name, node in raw["types"].items():
        types[name].update((key, link(spec)) for key, spec in node.items())
    return {
        name: {key: link(spec) for key, spec in node.items()}
        for name, node in raw["resources"].items()
    }


def implied_system(resource_type: str, path: list[str]) -> str | None:
    """The code system implied for the primitive ``code`` at ``resource_type.path``.

    A ``code`` element has no system of its own; its required binding names it. Search needs
    it so that ``gender=http://hl7.org/fhir/administrative-gender|female`` matches while a
    query naming another system does not. None when the element is not a bound code or its
    value set draws on several code systems.
    """
    node: _Node | _CodeSet | _NestedResource | None = _resource_nodes().get(resource_type)
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node.system if isinstance(node, _CodeSet) else None


def checked_resource_types() -> frozenset[str]:
    """Resource types that have at least one checkable required code (directly or nested)."""
    return frozenset(_resource_nodes())


def check_codes(resource: dict[str, Any]) -> list[CodeIssue]:
    """Return one issue per code that violates a required binding in ``resource``.

    ``resource`` is the JSON (dict) form of any R4 resource; its ``resourceType`` selects the
    rules. Contained and other nested resources are checked against their own type. Unknown
    resource types, unknown keys and values of the wrong JSON type are skipped: reporting those
    is the job of structural validation. An empty list means "no required-binding violations".
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return []
    node = _resource_nodes().get(resource_type)
    if node is None or not _has_issue(node, resource):
        return []
    issues: list[CodeIssue] = []
    _walk(node, resource, resource_type, issues)
    return issues


def _has_issue(node: _Node, data: dict[str, Any]) -> bool:
    """Fast pre-check: does ``data`` contain any bad code?

    Nearly all resources we see are valid, and for those most of the cost of :func:`_walk` is
    building FHIRPath strings nobody will read. This walk builds none and stops at the first
    bad code; :func:`_walk` then runs only for resources that actually have issues. Both walks
    must apply the same rules (same keys, same JSON type tests) so they always agree.
    """
    for key, value in data.items():
        spec = node.get(key)
        if spec is None:
            continue
        if isinstance(spec, dict):
            if isinstance(value, dict):
                if _has_issue(spec, value):
                    return True
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and _has_issue(spec, item):
                        return True
        elif isinstance(spec, _CodeSet):
            if isinstance(value, str):
                if value not in spec.codes:
                    return True
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, str) and item not in spec.codes:
                        return True
        elif isinstance(value, dict):
            if _resource_has_issue(value):
                return True
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and _resource_has_issue(item):
                    return True
    return False


def _resource_has_issue(data: dict[str, Any]) -> bool:
    """:func:`_has_issue` for a nested resource, using the rules of its own resourceType."""
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    node = _resource_nodes().get(resource_type)
    return node is not None and _has_issue(node, data)


def _walk(node: _Node, data: dict[str, Any], path: str, issues: list[CodeIssue]) -> None:
    """Check ``data`` against ``node``; ``path`` is the FHIRPath expression of ``data``.

    Iterates over the keys present in the data (usually far fewer than the keys a node knows,
    e.g. Extension has dozens of ``value[x]`` variants) and recurses only where the table says a
    required code may be found further down.
    """
    for key, value in data.items():
        spec = node.get(key)
        if spec is None:
            continue
        if isinstance(spec, dict):
            if isinstance(value, dict):
                _walk(spec, value, f"{path}.{key}", issues)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        _walk(spec, item, f"{path}.{key}[{i}]", issues)
        elif isinstance(spec, _CodeSet):
            if isinstance(value, str):
                if value not in spec.codes:
                    issues.append(_issue(spec, value, f"{path}.{key}"))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str) and item not in spec.codes:
                        issues.append(_issue(spec, item, f"{path}.{key}[{i}]"))
        elif isinstance(value, dict):
            _walk_resource(value, f"{path}.{key}", issues)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _walk_resource(item, f"{path}.{key}[{i}]", issues)


def _walk_resource(data: dict[str, Any], path: str, issues: list[CodeIssue]) -> None:
    """Check a nested resource against the rules of its own resourceType."""
    resource_type = data.get("resourceType")
    if isinstance(resource_type, str):
        node = _resource_nodes().get(resource_type)
        if node is not None:
            _walk(node, data, path, issues)


def _issue(code_set: _CodeSet, value: str, expression: str) -> CodeIssue:
    return CodeIssue(
        expression=expression,
        message=f"Unknown code {value!r} for {expression}; expected one of: {code_set.expected}",
    )
