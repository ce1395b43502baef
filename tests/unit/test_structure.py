"""The compiled structural check never accepts what the R4B models reject.

``structure.conforms`` lets a write skip the R4B model pass; that is only sound if every
resource it accepts is one the model accepts too. These tests take every resource in the
test data (spec examples, Synthea bundles, the Da Vinci notification, the demo bundle, the
expected ADT mapping output), check that the clean ones take the fast path, and then mutate
them thousands of ways (deleted and unknown elements, wrong datatypes, nulls, empty strings,
malformed dates and codes, second choice-type values, resourceType inside datatypes) and
compare both answers.
"""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.fhir.structure import conforms
from gateway.fhir.types import model_class

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "tests" / "data", ROOT / "examples"]
CHOICE = re.compile(r"^([a-z][A-Za-z]*?)(String|Boolean|DateTime|Period|Reference|"
                    r"CodeableConcept|Quantity|Integer|Age|Range|Date)$")


def _resources(value: Any) -> list[dict[str, Any]]:
    """Every resource in a JSON document: itself, bundle entries, contained ones."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("resourceType"), str):
            found.append(value)
        for item in value.values():
            found.extend(_resources(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_resources(item))
    return found


def _corpus() -> list[dict[str, Any]]:
    corpus = []
    for source in SOURCES:
        for path in sorted(source.rglob("*.json")):
            corpus.extend(r for r in _resources(json.loads(path.read_text()))
                          if model_class(r["resourceType"]) is not None)
    return corpus


CORPUS = _corpus()


def _model_accepts(resource: dict[str, Any]) -> bool:
    resource_type = resource.get("resourceType")
    cls = model_class(resource_type) if isinstance(resource_type, str) else None
    if cls is None:
        return False
    try:
        cls.model_validate(resource)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list inside a resource (the resource itself first)."""
    paths = [path] if isinstance(value, dict | list) else []
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        paths.extend(_containers(item, (*path, key)))
    return paths


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


REPLACEMENTS: list[Any] = [None, "", " padded", "x y", "2020-13-45", "12:00", 0, -1, 1.5,
                           True, "true", [], {}, [None], ["x"], {"id": "a"},
                           {"reference": "Patient/1"}, {"resourceType": "Coding"},
                           {"extension": [{"url": "http://x", "valueString": "y"}]}]


def _mutate(resource: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    mutant = copy.deepcopy(resource)
    target = _at(mutant, rng.choice(_containers(mutant)))
    action = rng.randrange(5)
    if isinstance(target, list):
        if target and action < 3:
            target[rng.randrange(len(target))] = rng.choice(REPLACEMENTS)
        else:
            target.append(rng.choice(REPLACEMENTS))
        return mutant
    keys = [k for k in target if k != "resourceType"]
    if action == 0 and keys:
        del target[rng.choice(keys)]
    elif action == 1 and keys:
        target[rng.choice(keys)] = rng.choice(REPLACEMENTS)
    elif action == 2:
        target[rng.choice(["unknownElement", "_status", "resourceType", "value", "url",
                           "status", "system", "code", "start"])] = rng.choice(REPLACEMENTS)
    elif action == 3:
        choices = [m for k in keys if (m := CHOICE.match(k))]
        if choices:
            match = rng.choice(choices)
            other = "Boolean" if match.group(2) != "Boolean" else "String"
            target[match.group(1) + other] = True if other == "Boolean" else "x"
    elif keys:
        key = rng.choice(keys)
        target[key] = [target[key]] if not isinstance(target[key], list) else target[key][0:1]
    return mutant


def test_the_corpus_is_large_and_takes_the_fast_path() -> None:
    assert len(CORPUS) >= 100
    accepted = [r for r in CORPUS if _model_accepts(r)]
    assert len(accepted) == len(CORPUS)
    slow = [f"{r['resourceType']}/{r.get('id')}" for r in accepted if not conforms(r)]
    assert slow == []


@pytest.mark.parametrize("seed", range(8))
def test_what_the_fast_check_accepts_the_model_accepts(seed: int) -> None:
    rng = random.Random(seed)
    both_reject = fast_only_rejects = 0
    for _ in range(600):
        mutant = _mutate(rng.choice(CORPUS), rng)
        fast, model = conforms(mutant), _model_accepts(mutant)
        assert model or not fast, json.dumps(mutant)[:2000]
        both_reject += not fast and not model
        fast_only_rejects += not fast and model
    # The mutations must actually break resources, and most model-valid ones stay fast.
    assert both_reject >= 150
    assert fast_only_rejects <= 60
