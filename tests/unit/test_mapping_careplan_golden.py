"""Golden files: each plan and roster in tests/data/careplans/ maps to exactly its expected
output in tests/data/careplans/expected/ (owned resources, parties by identifier, warnings),
and every resource it produces validates against the fhir.resources R4B models.

After an intended mapping change, regenerate with ``GATEWAY_UPDATE_GOLDEN=1 pytest
tests/unit/test_mapping_careplan_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from gateway.mapping.careplan import map_careplan
from gateway.mapping.careteam import map_careteam
from gateway.mapping.plancommon import MappedDocument
from gateway.mapping.planrules import PlanMappings

SAMPLES = Path(__file__).parents[1] / "data" / "careplans"
MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture(scope="module")
def mappings() -> PlanMappings:
    return PlanMappings.load(MAPPINGS)


def _mapped(path: Path, mappings: PlanMappings) -> MappedDocument:
    document = json.loads(path.read_text(encoding="utf-8"))
    if "planId" in document:
        return map_careplan(mappings.careplan, document)
    return map_careteam(mappings.careteam, document)


def _as_json(mapped: MappedDocument) -> dict[str, Any]:
    return {"identifier": mapped.identifier, "patient": mapped.patient,
            "parties": mapped.parties, "resources": mapped.resources,
            "issues": [[i.location, i.message] for i in mapped.issues]}


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_sample_maps_to_its_golden_file(sample: Path, mappings: PlanMappings) -> None:
    expected_path = SAMPLES / "expected" / sample.name
    actual = _as_json(_mapped(sample, mappings))
    if os.environ.get("GATEWAY_UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_resource_validates_as_r4(sample: Path, mappings: PlanMappings) -> None:
    mapped = _mapped(sample, mappings)
    for body in [mapped.patient, *mapped.parties.values(), *mapped.resources]:
        get_fhir_model_class(body["resourceType"]).model_validate(body)


def test_every_sample_has_a_golden_file() -> None:
    samples = {p.name for p in SAMPLES.glob("*.json")}
    assert samples == {p.name for p in (SAMPLES / "expected").glob("*.json")}


def test_schema_examples_are_the_documented_ones() -> None:
    """The examples shipped beside the schemas are the golden samples (kept in step)."""
    for kind in ("careplan", "careteam"):
        shipped = MAPPINGS / "schemas" / "examples" / f"{kind}.json"
        assert shipped.read_bytes() == (SAMPLES / f"{kind}-example.json").read_bytes()
