"""Golden files: each sample message in tests/data/hl7v2/ maps to exactly its expected
output in tests/data/hl7v2/expected/ (FHIR objects dumped as JSON, or the AE/AR it earns).

After an intended mapping change, regenerate with ``GATEWAY_UPDATE_GOLDEN=1 pytest
tests/unit/test_mapping_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.mapping.adt import map_adt
from gateway.mapping.issues import MappingError, MessageRejected
from gateway.mapping.rules import MappingSet
from gateway.mapping.v2message import V2Message

SAMPLES = Path(__file__).parents[1] / "data" / "hl7v2"
MAPPINGS = Path(__file__).parents[2] / "mappings"


@pytest.fixture(scope="module")
def mappings() -> MappingSet:
    return MappingSet.load(MAPPINGS)


def _mapped(path: Path, mappings: MappingSet) -> dict[str, Any]:
    message = V2Message.parse(path.read_text(encoding="utf-8"))
    try:
        return map_adt(message, mappings).as_json()
    except (MappingError, MessageRejected) as error:
        return {"error": {"ack": error.ack_code, "location": error.location,
                          "code": error.hl7_error_code, "message": error.message}}


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.hl7")), ids=lambda p: p.stem)
def test_sample_maps_to_its_golden_file(sample: Path, mappings: MappingSet) -> None:
    expected_path = SAMPLES / "expected" / f"{sample.stem}.json"
    actual = _mapped(sample, mappings)
    if os.environ.get("GATEWAY_UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


def test_every_sample_has_a_golden_file() -> None:
    samples = {p.stem for p in SAMPLES.glob("*.hl7")}
    expected = {p.stem for p in (SAMPLES / "expected").glob("*.json")}
    assert samples == expected
