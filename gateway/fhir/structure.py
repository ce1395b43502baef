"""A fast structural check of resources, compiled from the ``fhir.resources.R4B`` models.

The R4B models validate every nested element through a Python callback (about 0.3-0.5 ms
for a CarePlan, most of a create's CPU). This module reads the same models once per
resource type (field names, cardinality, primitive datatypes with their patterns, required
elements, choice groups) and compiles them into one ``pydantic_core`` validator that runs
in Rust: the primitive datatypes reuse the very core schemas the models use, so their rules
(regexes, dates, decimals) are the models' own.

The check is deliberately a *subset* of the models: it never accepts what a model would
reject, but may refuse what a model accepts (a ``_status`` extension standing in for a
required value, field names instead of JSON names, ``resourceType`` inside a datatype,
R4 types R4B lacks). ``conforms`` answering False therefore only means "ask the model":
``validate.validate_resource`` then runs the R4B model, whose answer (and error messages)
is authoritative. ``tests/unit/test_structure.py`` checks the subset property on mutated
resources.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import CoreSchema, SchemaValidator, core_schema

from gateway.fhir.types import model_class

_ABSTRACT_RESOURCE = "fhir.resources.R4B.resource.Resource"


def conforms(resource: dict[str, Any]) -> bool:
    """True when ``resource`` certainly passes its R4B model; False means "ask the model"."""
    resource_type = resource.get("resourceType")
    validator = _validator(resource_type) if isinstance(resource_type, str) else None
    if validator is None:
        return False
    try:
        validator.validate_python(resource)
    except (ValueError, TypeError):  # pydantic_core.ValidationError is a ValueError
        return False
    return True


@cache
def _validator(resource_type: str) -> SchemaValidator | None:
    cls = model_class(resource_type)
    if cls is None:
        return None
    return SchemaValidator(_Compiler().compile(cls))


def _nested_resource(value: Any) -> Any:
    """``Resource``-typed elements (contained, Bundle.entry.resource): check by own type."""
    if not isinstance(value, dict) or not conforms(value):
        raise ValueError("not a conforming resource")
    return value


class _Compiler:
    """One compilation: the schema of a resource type and every element type it reaches."""

    def __init__(self) -> None:
        self._definitions: dict[str, CoreSchema] = {}

    def compile(self, cls: type) -> CoreSchema:
        root = self._element(cls)
        return core_schema.definitions_schema(root, list(self._definitions.values()))

    def _element(self, cls: type) -> CoreSchema:
        ref = f"{cls.__module__}.{cls.__qualname__}"
        if ref not in self._definitions:
            self._definitions[ref] = core_schema.any_schema()  # placeholder while recursing
            self._definitions[ref] = self._build(cls, ref)
        return core_schema.definition_reference_schema(ref)

    def _build(self, cls: Any, ref: str) -> CoreSchema:
        fields: dict[str, core_schema.TypedDictField] = {}
        required: list[str] = []
        choices: dict[str, tuple[bool, list[str]]] = {}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            fields[key] = core_schema.typed_dict_field(
                self._annotation(field.annotation), required=field.is_required())
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("element_required"):
                required.append(key)
            if "one_of_many" in extra:
                group = choices.setdefault(
                    str(extra["one_of_many"]), (bool(extra.get("one_of_many_required")), []))
                group[1].append(key)
        if cls.has_resource_base():
            fields["resourceType"] = core_schema.typed_dict_field(
                core_schema.literal_schema([cls.get_resource_type()]), required=False)
        schema = core_schema.typed_dict_schema(fields, extra_behavior="forbid")
        if not required and not choices:
            return core_schema.typed_dict_schema(fields, extra_behavior="forbid", ref=ref)
        return core_schema.no_info_after_validator_function(
            _rules(required, list(choices.values())), schema, ref=ref)

    def _annotation(self, annotation: Any) -> CoreSchema:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            present = [a for a in args if a is not type(None)]
            if len(present) == 1 and len(args) == 2:
                return core_schema.nullable_schema(self._annotation(present[0]))
        elif origin is list and len(args) == 1:
            return core_schema.list_schema(self._annotation(args[0]))
        model_path = getattr(annotation, "_model_klass", None)
        if isinstance(annotation, type) and model_path is not None:
            if model_path == _ABSTRACT_RESOURCE:
                return core_schema.no_info_plain_validator_function(_nested_resource)
            return self._element(annotation.get_model_klass())
        return _primitive(annotation)


@cache
def _primitive(annotation: Any) -> CoreSchema:
    """A primitive datatype's core schema, exactly as its model field uses it."""
    return TypeAdapter(annotation).core_schema


def _rules(required: list[str],
           choices: list[tuple[bool, list[str]]]) -> Callable[[dict[str, Any]], Any]:
    """Required primitive elements (a value, not an extension in its place) and choice
    groups (``value[x]``: at most one, and one when the element is required)."""

    def check(element: dict[str, Any]) -> dict[str, Any]:
        for key in required:
            if element.get(key) is None:
                raise ValueError(f"{key} is required")
        for needed, keys in choices:
            present = sum(1 for key in keys if element.get(key) is not None)
            if present > 1 or (needed and present == 0):
                raise ValueError(f"one of {keys} is expected")
        return element

    return check
