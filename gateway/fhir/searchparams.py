"""The R4 SearchParameter definitions, compiled once into extractors.

Source: ``Bundle-searchParams.json`` of the CC0 npm package ``hl7.fhir.r4.examples@4.0.1``,
reduced to the fields we use in ``data/search-parameters.json`` (see scripts/).
Composite and special parameters are not supported and so not advertised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from gateway.fhir.codes import implied_system
from gateway.fhir.fhirpath import Extractor, UnsupportedExpression, compile_expression
from gateway.fhir.types import RESOURCE_TYPES

SUPPORTED_TYPES = frozenset({"token", "reference", "string", "date", "quantity", "number", "uri"})
# Parameters answered from columns of the resource table rather than from index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
_ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})
_SIMPLE_PATH = re.compile(r"^[A-Z][A-Za-z]+(\.[a-z][A-Za-z]*)+$")


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as it applies to one resource type."""

    code: str
    type: str
    url: str
    expression: str
    targets: tuple[str, ...] = ()
    # For token parameters on a primitive ``code``: the system its binding implies.
    system: str | None = None
    extract: Extractor | None = field(default=None, compare=False, repr=False)

    @property
    def is_column(self) -> bool:
        return self.code in COLUMN_PARAMS


class Registry:
    """Search parameters by resource type and code."""

    def __init__(self, definitions: list[dict[str, Any]]) -> None:
        self._by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in RESOURCE_TYPES}
        for definition in definitions:
            self._add(definition)

    def _add(self, definition: dict[str, Any]) -> None:
        if definition["type"] not in SUPPORTED_TYPES or not definition.get("expression"):
            return
        try:
            extractors = compile_expression(definition["expression"])
        except UnsupportedExpression:
            return
        bases = definition["base"]
        if any(base in _ABSTRACT_BASES for base in bases):
            extractor = next(iter(extractors.values()))
            for resource_type, params in self._by_type.items():
                params[definition["code"]] = self._param(definition, extractor, resource_type)
            return
        for base in bases:
            if base in self._by_type and base in extractors:
                param = self._param(definition, extractors[base], base)
                self._by_type[base][definition["code"]] = param

    @staticmethod
    def _param(definition: dict[str, Any], extractor: Extractor, resource_type: str) -> SearchParam:
        return SearchParam(
            code=definition["code"],
            type=definition["type"],
            url=definition["url"],
            expression=definition["expression"],
            targets=tuple(definition.get("target", ())),
            system=_implied_system(definition, resource_type),
            extract=extractor,
        )

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_type.get(resource_type, {}).get(code)

    def for_type(self, resource_type: str) -> dict[str, SearchParam]:
        return self._by_type.get(resource_type, {})

    def indexed(self, resource_type: str) -> list[SearchParam]:
        """Parameters whose values are written to the search index for this type."""
        return [p for p in self.for_type(resource_type).values() if not p.is_column]


def _implied_system(definition: dict[str, Any], resource_type: str) -> str | None:
    """The one code system implied by the bindings of the ``code`` elements a token parameter
    reads for ``resource_type`` (e.g. Patient.gender -> administrative-gender), if any."""
    if definition["type"] != "token":
        return None
    systems = set()
    for part in definition["expression"].split("|"):
        part = part.strip()
        if _SIMPLE_PATH.match(part) and part.startswith(f"{resource_type}."):
            systems.add(implied_system(resource_type, part.split(".")[1:]))
    return systems.pop() if len(systems) == 1 else None


@cache
def registry() -> Registry:
    """The process-wide registry, built on first use (about 1,300 compiled expressions)."""
    text = resources.files("gateway.fhir.data").joinpath("search-parameters.json").read_text()
    return Registry(json.loads(text))
