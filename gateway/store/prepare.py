"""The pure half of a write: validate, find references, compute index rows.

None of it needs the database, so it can run before the write transaction opens, in another
thread or in another process (see ``api.preparation``): on a multi-core machine validation,
the largest cost of a create, then runs beside the transaction work instead of before it.
The Repository accepts a ``Prepared`` resource or prepares one itself, so every write still
goes through the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidResource
from gateway.fhir.references import iter_reference_holders, parse_reference
from gateway.fhir.validate import check_resource_type, parse_resource, validate_resource
from gateway.store.indexer import IndexRows, index_rows

Reference = tuple[str, str, str]  # (type, id, the reference as written)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated resource with its local references and search-index rows."""

    resource: dict[str, Any]
    references: list[Reference]
    rows: IndexRows
    base_url: str


def prepare(resource: dict[str, Any], base_url: str) -> Prepared:
    """Validate ``resource`` (InvalidResource on any fault) and derive what the write needs."""
    validate_resource(resource)
    references = local_references(resource, base_url)
    rows = index_rows(resource["resourceType"], resource, base_url)
    return Prepared(resource, references, rows, base_url)


def prepare_body(raw: bytes, resource_type: str, base_url: str) -> Prepared:
    """``prepare`` for a request body: parse, check it is a ``resource_type``, prepare."""
    resource = parse_resource(raw)
    check_resource_type(resource, resource_type)
    return prepare(resource, base_url)


def local_references(resource: dict[str, Any], base_url: str) -> list[Reference]:
    """Every literal reference to a resource on this server (relative, or absolute on our
    base); contained (``#``) and other servers' references are not ours to check."""
    found = []
    for holder in iter_reference_holders(resource):
        reference = holder["reference"]
        if reference.startswith("#"):
            continue
        if reference.startswith("urn:"):
            raise InvalidResource(
                f"The reference {reference!r} cannot be resolved: urn: references are "
                "only allowed inside a transaction Bundle.")
        parsed = parse_reference(reference)
        if parsed is None:
            if "/" in reference and not reference.startswith(("http:", "https:")):
                raise InvalidResource(f"The reference {reference!r} is not a valid "
                                      "Type/id reference.")
            continue
        if parsed.base is not None and parsed.base.rstrip("/") != base_url.rstrip("/"):
            continue
        found.append((parsed.type, parsed.id, reference))
    return found
