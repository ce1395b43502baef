"""Validation of case-management plans and care-team rosters against their JSON Schemas
(``mappings/schemas/``, JSON Schema draft 2020-12).

A document that breaks its schema is refused with one OperationOutcome issue per fault, each
naming the field as a JSON pointer into the submitted document (RFC 6901), e.g.
``/riskFactors/2/code``, so the exporting system can find it without knowing FHIR.

Each schema is compiled twice: by ``jsonschema-rs`` (Rust), which answers "valid?" in
microseconds, and by ``jsonschema``, which builds the field-level faults. Only a document the
first finds invalid goes through the second, and the second decides: ``jsonschema-rs``
checks formats (``uri``) that ``jsonschema`` leaves unchecked without optional packages, so
the faster check is never the looser one and what is accepted is exactly what
``jsonschema`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from gateway.errors import InvalidRequest
from gateway.mapping.issues import MappingFileError

_MAX_MESSAGE = 200


class SourceDocumentInvalid(InvalidRequest):
    """The submitted document does not conform to its source format (HTTP 400)."""

    def __init__(self, faults: list[tuple[str, str]]) -> None:
        details = [(f"{pointer or '/'}: {message}", [pointer or "/"])
                   for pointer, message in faults]
        super().__init__(details[0][0], expression=details[0][1], details=details)
        self.faults = faults


class SchemaValidator:
    """One JSON Schema (draft 2020-12), compiled by both libraries (see the module notes)."""

    def __init__(self, schema: dict[str, Any], registry: Registry,
                 fast_registry: jsonschema_rs.Registry) -> None:
        Draft202012Validator.check_schema(schema)
        self.full = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
        self.fast = jsonschema_rs.Draft202012Validator(
            schema, registry=fast_registry, validate_formats=True, offline=True)

    def iter_errors(self, document: Any) -> Iterator[ValidationError]:
        """``jsonschema``'s errors (none for a document ``jsonschema-rs`` accepts)."""
        if self.fast.is_valid(document):
            return iter(())
        return self.full.iter_errors(document)


def load_validators(folder: Path) -> dict[str, SchemaValidator]:
    """Every ``*.schema.json`` in ``folder``, by file name, able to refer to one another."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.schema.json")):
        try:
            schemas[path.name] = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise MappingFileError(f"{path}: {error}") from None
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    fast_registry = jsonschema_rs.Registry(
        [(schema["$id"], schema) for schema in schemas.values()])
    return {name: SchemaValidator(schema, registry, fast_registry)
            for name, schema in schemas.items()}


def check(validator: SchemaValidator, document: Any) -> None:
    """Raise ``SourceDocumentInvalid`` listing every fault, in document order."""
    faults = sorted(_faults(validator.iter_errors(document)))
    if faults:
        raise SourceDocumentInvalid(faults)


def _faults(errors: Iterable[ValidationError]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(fault for error in errors for fault in _fault(error)))


def _fault(error: ValidationError) -> list[tuple[str, str]]:
    pointer = pointer_of(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        return [(f"{pointer}/{_escape(name)}", "is required") for name in missing]
    return [_one(error, pointer)]


def _one(error: ValidationError, pointer: str) -> tuple[str, str]:
    if error.validator in ("anyOf", "oneOf"):
        names = [name for option in error.validator_value
                 for name in option.get("required", [])]
        if names and error.validator == "anyOf":
            return pointer, f"needs one of: {', '.join(names)}"
        if names:
            return pointer, f"needs exactly one of: {', '.join(names)}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        if extra:
            return f"{pointer}/{_escape(extra[0])}", "is not a field of this format"
    return pointer, error.message[:_MAX_MESSAGE]


def pointer_of(path: Iterable[Any]) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join(f"/{_escape(str(part))}" for part in path)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
