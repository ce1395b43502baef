"""Load the declarative mapping files under ``mappings/`` (documented in mappings/README.md).

``hl7v2/adt.yaml`` holds the shared ADT rules; ``hl7v2/facilities/<MSH-4>.yaml`` files are
merged over them for one sending facility; ``conceptmaps/*.json`` are the code tables. Files
are read once and checked on load, so a broken mapping fails at start-up, not per message.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.mapping.conceptmaps import CodeTable, LayeredTable
from gateway.mapping.issues import MappingFileError
from gateway.mapping.v2message import FieldPath

DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def mappings_dir() -> Path:
    """``GATEWAY_MAPPINGS_DIR`` when set, else ``mappings/`` beside the ``gateway`` package
    (the source checkout and the container image)."""
    configured = os.environ.get("GATEWAY_MAPPINGS_DIR")
    return Path(configured) if configured else DEFAULT_MAPPINGS


@dataclass
class RuleSet:
    """One mapping file's rules and the code tables they may name (every format's rules)."""

    rules: dict[str, Any]
    tables: dict[str, LayeredTable]

    def section(self, name: str) -> dict[str, Any]:
        return self.rules.get(name) or {}

    def table(self, name: str) -> LayeredTable:
        try:
            return self.tables[name]
        except KeyError:
            raise MappingFileError(f"unknown ConceptMap {name!r}") from None


@dataclass
class AdtRules(RuleSet):
    """The ADT rules in force for one sending facility (shared rules + its overrides)."""

    facility: str | None = None


@dataclass
class MappingSet:
    """Every mapping file of a ``mappings/`` folder, loaded and checked."""

    root: Path
    adt: dict[str, Any]
    facilities: dict[str, dict[str, Any]]
    tables: dict[str, CodeTable]
    _cache: dict[str | None, AdtRules] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> MappingSet:
        adt = read_yaml(root / "hl7v2" / "adt.yaml")
        tables = load_code_tables(root / "conceptmaps")
        facilities = {}
        for path in sorted((root / "hl7v2" / "facilities").glob("*.yaml")):
            data = read_yaml(path)
            facilities[str(data.get("facility") or path.stem)] = data
        mapping = cls(root, adt, facilities, tables)
        mapping.for_facility(None)
        for name in facilities:
            mapping.for_facility(name)
        return mapping

    def for_facility(self, facility: str | None) -> AdtRules:
        """The rules for messages whose MSH-4 is ``facility`` (shared ones if none)."""
        key = facility if facility in self.facilities else None
        if key not in self._cache:
            self._cache[key] = self._build(key)
        return self._cache[key]

    def _build(self, facility: str | None) -> AdtRules:
        override = self.facilities.get(facility or "", {})
        rules = merge(copy.deepcopy(self.adt),
                       {k: v for k, v in override.items() if k not in ("facility", "conceptmaps")})
        layered = {}
        extra = override.get("conceptmaps") or {}
        for name, table in self.tables.items():
            layers = [table]
            if name in extra:
                layers.insert(0, self._table(extra[name], facility))
            layered[name] = LayeredTable(layers)
        _check(rules, layered, facility)
        return AdtRules(rules, layered, facility)

    def _table(self, name: str, facility: str | None) -> CodeTable:
        if name not in self.tables:
            raise MappingFileError(f"facility {facility}: unknown ConceptMap {name!r}")
        return self.tables[name]


def load_code_tables(folder: Path) -> dict[str, CodeTable]:
    """Every ConceptMap of ``mappings/conceptmaps/``, by file name (without ``.json``)."""
    return {p.stem: CodeTable.load(p) for p in sorted(folder.glob("*.json"))}


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MappingFileError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise MappingFileError(f"{path}: expected a mapping at the top level")
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override wins; nested mappings are merged key by key, lists are replaced."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _check(rules: dict[str, Any], tables: dict[str, LayeredTable], facility: str | None) -> None:
    """Every field path parses and every ConceptMap named exists."""
    where = f"facility {facility}" if facility else "adt.yaml"
    for rule in _rules(rules):
        if "field" in rule:
            try:
                FieldPath.parse(str(rule["field"]))
            except ValueError as error:
                raise MappingFileError(f"{where}: {error}") from None
        if "conceptmap" in rule and rule["conceptmap"] not in tables:
            raise MappingFileError(f"{where}: unknown ConceptMap {rule['conceptmap']!r}")
    for code, event in (rules.get("events") or {}).items():
        if not isinstance(event, dict) or "action" not in event:
            raise MappingFileError(f"{where}: event {code} needs an action")


def _rules(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if ("field" in node or "conceptmap" in node) else []
        for value in node.values():
            found += _rules(value)
        return found
    if isinstance(node, list):
        return [r for item in node for r in _rules(item)]
    return []
