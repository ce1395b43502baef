"""Load the plan and roster mapping files (``mappings/careplan/*.yaml``, the JSON Schemas in
``mappings/schemas/`` and the ConceptMaps they name), with the conventions of the ADT rules
(``rules.py``): read once, checked on load, a broken file fails at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.mapping.conceptmaps import CodeTable, LayeredTable
from gateway.mapping.issues import MappingFileError
from gateway.mapping.planschema import SchemaValidator, load_validators
from gateway.mapping.rules import RuleSet, load_code_tables, read_yaml


@dataclass
class FormatRules(RuleSet):
    """The rules of one source format: its YAML, its code tables, its schema validator."""

    validator: SchemaValidator | None = None

    def system(self, kind: str, **values: str) -> str:
        """An identifier system of ``identifier_systems`` with ``{source}`` etc. filled in."""
        template = str(self.section("identifier_systems")[kind])
        return template.format(**values)


@dataclass
class PlanMappings:
    """Both source formats: ``careplan`` and ``careteam``."""

    careplan: FormatRules
    careteam: FormatRules

    @classmethod
    def load(cls, root: Path) -> PlanMappings:
        validators = load_validators(root / "schemas")
        tables = load_code_tables(root / "conceptmaps")
        return cls(_format(root / "careplan" / "careplan.yaml", validators, tables),
                   _format(root / "careplan" / "careteam.yaml", validators, tables))


def _format(path: Path, validators: dict[str, SchemaValidator],
            tables: dict[str, CodeTable]) -> FormatRules:
    rules = read_yaml(path)
    schema = str(rules.get("schema"))
    if schema not in validators:
        raise MappingFileError(f"{path.name}: unknown schema {schema!r}")
    named = {rule["conceptmap"] for rule in _rules(rules)}
    missing = sorted(named - set(tables))
    if missing:
        raise MappingFileError(f"{path.name}: unknown ConceptMap {missing[0]!r}")
    return FormatRules(rules, {name: LayeredTable([tables[name]]) for name in named},
                       validators[schema])


def _rules(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if "conceptmap" in node else []
        return found + [r for value in node.values() for r in _rules(value)]
    if isinstance(node, list):
        return [r for item in node for r in _rules(item)]
    return []
