"""Code tables as FHIR R4 ConceptMap resources (http://hl7.org/fhir/R4/conceptmap.html).

A ConceptMap file is validated with the R4B model when loaded; translation looks a source
code up in its groups. A per-facility map is consulted before the shared one, so a facility
file only lists the codes it sends differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fhir.resources.R4B.conceptmap import ConceptMap
from pydantic import ValidationError

from gateway.mapping.issues import MappingFileError

_MATCHING = {"relatedto", "equivalent", "equal", "wider", "subsumes", "narrower",
             "specializes", "inexact"}


@dataclass(frozen=True)
class Translation:
    """One target code; ``system`` and ``display`` come from the ConceptMap group."""

    system: str | None
    code: str
    display: str | None


class CodeTable:
    """A loaded ConceptMap: source system, and source code -> Translation."""

    def __init__(self, concept_map: ConceptMap) -> None:
        self.name = concept_map.name or concept_map.id or ""
        self.url = concept_map.url
        self.source_system: str | None = None
        self.codes: dict[str, Translation] = {}
        self.displays: dict[str, str] = {}  # source code -> its display (element.display)
        for group in concept_map.group or []:
            self.source_system = self.source_system or group.source
            for element in group.element or []:
                if element.code and element.display:
                    self.displays.setdefault(element.code, element.display)
                target = _first_match(element.target or [])
                if element.code and target is not None and target.code:
                    self.codes.setdefault(element.code, Translation(
                        group.target, target.code, target.display))

    @classmethod
    def load(cls, path: Path) -> CodeTable:
        try:
            data: dict[str, Any] = orjson.loads(path.read_bytes())
            return cls(ConceptMap.model_validate(data))
        except (OSError, orjson.JSONDecodeError, ValidationError, ValueError) as error:
            raise MappingFileError(f"{path.name}: not a valid ConceptMap: {error}") from None

    def translate(self, code: str) -> Translation | None:
        return self.codes.get(code)

    def source_display(self, code: str) -> str | None:
        """How the source system names ``code``: readable text even when no target
        concept is chosen yet (an ``unmatched`` element)."""
        return self.displays.get(code)


def _first_match(targets: list[Any]) -> Any:
    for target in targets:
        if (target.equivalence or "equivalent") in _MATCHING:
            return target
    return None


class LayeredTable:
    """A facility's table over the shared one: the first that knows a code answers."""

    def __init__(self, layers: list[CodeTable]) -> None:
        self.layers = layers
        self.source_system = next((t.source_system for t in layers if t.source_system), None)

    def translate(self, code: str) -> Translation | None:
        for table in self.layers:
            found = table.translate(code)
            if found is not None:
                return found
        return None

    def source_display(self, code: str) -> str | None:
        return next((d for t in self.layers if (d := t.source_display(code))), None)
