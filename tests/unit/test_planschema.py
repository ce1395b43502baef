"""The source-format schemas are checked by jsonschema-rs first and by jsonschema only for a
document the first refuses: the two must agree on what is valid, and where they do not
(formats jsonschema leaves unchecked, Python's ``$`` before a final newline) jsonschema's
answer stands, so the faster check never accepts what was refused before."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mapping.planschema import (
    SchemaValidator,
    SourceDocumentInvalid,
    check,
    load_validators,
)

SCHEMAS = Path(__file__).parents[2] / "mappings" / "schemas"
Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def validators() -> dict[str, SchemaValidator]:
    return load_validators(SCHEMAS)


def _example(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / "examples" / f"{kind}.json").read_text())


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        node = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return mutate


def _drop(path: list[Any]) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        node = document
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return mutate


PLAN_CASES: list[tuple[Mutation, bool]] = [
    (lambda d: None, True),
    (_set(["planId"], "has space"), False),
    (_set(["planId"], "x" * 65), False),
    (_set(["riskFactors", 0, "code"], 7), False),
    (_set(["riskFactors"], []), False),
    (_set(["enrolmentDate"], "2026-1-5"), False),
    (_set(["unexpected"], True), False),
    (_set(["patient", "identifiers"], []), False),
    (_set(["interventions", 0, "owner"], {"npi": "12345"}), False),
    (_drop(["status"]), False),
    (_drop(["patient"]), False),
]
ROSTER_CASES: list[tuple[Mutation, bool]] = [
    (lambda d: None, True),
    (_set(["members"], []), False),
    (_set(["members", 0, "npi"], "12345"), False),
    (_set(["rosterId"], ""), False),
    (_set(["members", 0, "period"], {"start": "yesterday"}), False),
    (_drop(["members"]), False),
]


@pytest.mark.parametrize(("mutate", "valid"), PLAN_CASES)
def test_plan_schema_answers_agree(validators: dict[str, SchemaValidator],
                                   mutate: Mutation, valid: bool) -> None:
    _agree(validators["careplan.schema.json"], _example("careplan"), mutate, valid)


@pytest.mark.parametrize(("mutate", "valid"), ROSTER_CASES)
def test_roster_schema_answers_agree(validators: dict[str, SchemaValidator],
                                     mutate: Mutation, valid: bool) -> None:
    _agree(validators["careteam.schema.json"], _example("careteam"), mutate, valid)


def _agree(validator: SchemaValidator, document: dict[str, Any], mutate: Mutation,
           valid: bool) -> None:
    mutate(document)
    assert validator.fast.is_valid(document) is valid
    assert validator.full.is_valid(document) is valid
    assert (not list(validator.iter_errors(document))) is valid


def test_where_the_fast_check_is_stricter_jsonschema_decides(
        validators: dict[str, SchemaValidator]) -> None:
    """jsonschema checks no ``uri`` format without optional packages, and Python's ``$``
    matches before a final newline: such documents were accepted and still are."""
    roster = _example("careteam")
    roster["members"][0]["endpoint"] = "not a uri"
    plan = _example("careplan")
    plan["planId"] = "CP-1001\n"
    for name, document in (("careteam.schema.json", roster), ("careplan.schema.json", plan)):
        validator = validators[name]
        assert not validator.fast.is_valid(document)
        check(validator, document)  # no SourceDocumentInvalid


def test_faults_still_come_from_jsonschema(validators: dict[str, SchemaValidator]) -> None:
    plan = _example("careplan")
    plan["riskFactors"][2]["code"] = 7
    with pytest.raises(SourceDocumentInvalid) as caught:
        check(validators["careplan.schema.json"], plan)
    assert caught.value.faults == [("/riskFactors/2/code", "7 is not of type 'string'")]


_TEXT = st.text(st.characters(codec="utf-8"), max_size=70) | st.sampled_from(
    ["CP-1", "2026-01-05", "1234567893", "a\n", "\u0661\u0662", "x" * 64])


@settings(max_examples=300, deadline=None)
@given(key=_TEXT, date=_TEXT, npi=_TEXT)
def test_the_fast_check_never_accepts_what_jsonschema_refuses(
        validators: dict[str, SchemaValidator], key: str, date: str, npi: str) -> None:
    plan = _example("careplan")
    plan["planId"], plan["enrolmentDate"] = key, date
    plan["interventions"][0]["owner"] = {"npi": npi}
    validator = validators["careplan.schema.json"]
    if validator.fast.is_valid(copy.deepcopy(plan)):
        assert validator.full.is_valid(plan)
