"""Parsing and walking FHIR references (http://hl7.org/fhir/R4/references.html)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.fhir.types import RESOURCE_TYPES

_RELATIVE = re.compile(
    r"^(?:(?P<base>https?://.+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)


@dataclass(frozen=True)
class ParsedReference:
    """A literal reference split into its parts; ``base`` is None for relative ones."""

    type: str
    id: str
    version: str | None = None
    base: str | None = None

    @property
    def relative(self) -> str:
        return f"{self.type}/{self.id}"


def parse_reference(value: str) -> ParsedReference | None:
    """Split ``Type/id[/_history/v]`` or an absolute RESTful URL; None for anything else
    (``#contained``, ``urn:uuid:...``, canonical or non-RESTful URLs)."""
    match = _RELATIVE.match(value)
    if match is None or match["type"] not in RESOURCE_TYPES:
        return None
    return ParsedReference(match["type"], match["id"], match["version"], match["base"])


def iter_reference_holders(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object carrying a string ``reference`` (a Reference datatype), depth first,
    not descending into contained resources' own references twice."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for key, value in node.items():
            if key != "reference" and isinstance(value, dict | list):
                yield from iter_reference_holders(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_reference_holders(item)
