"""The R4 (4.0.1) resource types and their ``fhir.resources.R4B`` model classes.

The list of types is the spec's own (CapabilityStatement-base of the R4 examples package).
R4B dropped 18 R4 types (MedicinalProduct*, Substance{NucleicAcid,Polymer,...},
EffectEvidenceSynthesis, RiskEvidenceSynthesis); those are stored with structural checks only.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # http://hl7.org/fhir/R4/datatypes.html#id


def _load_types() -> frozenset[str]:
    text = resources.files("gateway.fhir.data").joinpath("resource-types.json").read_text()
    return frozenset(json.loads(text))


RESOURCE_TYPES: frozenset[str] = _load_types()


def is_resource_type(name: str) -> bool:
    return name in RESOURCE_TYPES


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


@cache
def model_class(resource_type: str) -> Any | None:
    """The R4B pydantic model for a type, or None when R4B no longer has it."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None
