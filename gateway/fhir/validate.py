"""Parse and validate resources once, on the way in.

Structure and datatypes are checked by the ``fhir.resources.R4B`` models (wire-compatible with
R4 4.0.1 for the types they share): first by ``structure.conforms``, compiled from those models
and about ten times faster, then, only when it refuses, by the model itself, whose answer and
error messages decide. Codes with a required binding are checked by ``codes.check_codes``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.errors import InvalidRequest, InvalidResource
from gateway.fhir.structure import conforms
from gateway.fhir.types import is_resource_type, is_valid_id, model_class


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body, or raise a 400 naming where it broke."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a FHIR resource was expected.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The request body is not valid JSON: {error}",
                             code="structure") from None


def parse_resource(raw: bytes) -> dict[str, Any]:
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidResource("The request body must be a JSON object (a FHIR resource).",
                              code="structure")
    return data


def check_resource_type(resource: dict[str, Any], expected: str | None = None) -> str:
    """The resource's type, checked against the URL's type when there is one."""
    found = resource.get("resourceType")
    if not isinstance(found, str) or not is_resource_type(found):
        raise InvalidResource(f"Unknown or missing resourceType {found!r}.",
                              expression=["resourceType"])
    if expected is not None and found != expected:
        raise InvalidResource(
            f"The resourceType {found!r} does not match the type in the URL ({expected}).",
            expression=[f"{found}.resourceType"])
    return found


def validate_resource(resource: dict[str, Any]) -> None:
    """Raise ``InvalidResource`` listing every fault, each with its FHIRPath expression."""
    resource_type = check_resource_type(resource)
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not is_valid_id(rid)):
        raise InvalidResource(f"Invalid id {rid!r}: ids are 1-64 of A-Z a-z 0-9 - .",
                              expression=[f"{resource_type}.id"])
    _check_characters(resource_type, resource)
    model_type = model_class(resource_type)
    if model_type is not None and not conforms(resource):
        try:
            model_type.model_validate(resource)
        except ValidationError as error:
            raise _invalid(resource_type, error) from None
        except (TypeError, ValueError) as error:
            raise InvalidResource(f"Invalid {resource_type}: {error}",
                                  expression=[resource_type]) from None
    _check_codes(resource_type, resource)


# R4 datatypes.html#string: "Strings SHALL NOT contain any Unicode character points below 32,
# except for u0009 (horizontal tab), u0010 (carriage return) and u0013 (line feed)."
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# How orjson writes those characters: the cheap test that lets clean resources skip the walk.
_ESCAPED = re.compile(rb"\\u00[01][0-9a-f]|\\[bf]")


def _check_characters(resource_type: str, resource: dict[str, Any]) -> None:
    if _ESCAPED.search(orjson.dumps(resource)) is None:
        return
    where = _forbidden_at(resource, resource_type)
    if where is not None:
        raise InvalidResource(f"{where}: strings may not contain control characters other "
                              "than tab, carriage return and line feed.", expression=[where])


def _forbidden_at(value: Any, path: str) -> str | None:
    """The FHIRPath of the first string holding a forbidden character, if any."""
    if isinstance(value, str):
        return path if _FORBIDDEN.search(value) else None
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for p, v in items if (found := _forbidden_at(v, p))), None)


def _check_codes(resource_type: str, resource: dict[str, Any]) -> None:
    from gateway.fhir.codes import check_codes

    problems = check_codes(resource)
    if problems:
        details = [(p.message, [p.expression]) for p in problems]
        raise InvalidResource(details[0][0], expression=details[0][1], details=details,
                              code="code-invalid")


def _invalid(resource_type: str, error: ValidationError) -> InvalidResource:
    details = []
    for item in error.errors(include_url=False)[:20]:
        expression = _expression(resource_type, item.get("loc", ()))
        details.append((f"{expression}: {item.get('msg', 'invalid')}", [expression]))
    if not details:
        details.append((str(error), [resource_type]))
    return InvalidResource(details[0][0], expression=details[0][1], details=details)


def _expression(resource_type: str, location: tuple[Any, ...]) -> str:
    """Pydantic's error location as FHIRPath, e.g. ``Encounter.participant[0].period``."""
    text = resource_type
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part not in ("__root__", "root"):
            text += f".{part}"
    return text
