"""Load the transition workflow rules (``mappings/workflows/``), with the conventions of the
other mapping files (``rules.py``): read once, checked on load against their JSON Schema
(``mappings/schemas/workflows.schema.json``) and for consistency, so a broken file fails at
start-up, not when a patient is discharged.

``transitions.yaml`` holds the default rules; each ``programs/<name>.yaml`` is merged over
them (mappings key by key, lists replaced, as the facility files of the ADT rules) for the
CarePlans it ``match``es: by a category code or an instantiated canonical.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.mapping.issues import MappingFileError
from gateway.mapping.planschema import SchemaValidator, load_validators, pointer_of
from gateway.mapping.rules import merge, read_yaml

SCHEMA = "workflows.schema.json"


@dataclass(frozen=True)
class Activity:
    """One follow-up activity: what it is, when it is due, what satisfies it."""

    name: str
    description: str
    code: dict[str, str]
    days: int
    business_days: bool
    priority: str | None
    satisfied_by: dict[str, list[str]] | None


@dataclass(frozen=True)
class Trigger:
    """Encounter states that fire a rule, and the activities they add."""

    name: str
    status: frozenset[str]
    classes: frozenset[str]
    from_end: bool
    activities: tuple[str, ...]


@dataclass(frozen=True)
class ProgramRules:
    """The rules in force for one program (defaults + that program's overrides)."""

    program: str | None
    task_system: str
    activity_system: str
    timezone: ZoneInfo
    holidays: frozenset[date]
    max_age_days: int | None
    owner: tuple[str, ...]
    lead_extension: str
    triggers: tuple[Trigger, ...]
    activities: dict[str, Activity]
    activity_status: dict[str, str]
    overdue: dict[str, str]


@dataclass
class WorkflowRules:
    """The default rules and every program's rules, with what selects each program."""

    default: ProgramRules
    programs: list[tuple[dict[str, list[str]], ProgramRules]]

    @classmethod
    def load(cls, root: Path) -> WorkflowRules:
        validator = load_validators(root / "schemas")[SCHEMA]
        base = _checked(validator, root / "workflows" / "transitions.yaml")
        programs = []
        for path in sorted((root / "workflows" / "programs").glob("*.yaml")):
            override = _checked(validator, path)
            merged = merge(copy.deepcopy(base), {k: v for k, v in override.items()
                                                 if k not in ("match", "program")})
            programs.append((override["match"], _build(merged, override["program"], path)))
        return cls(_build(base, None, root / "workflows" / "transitions.yaml"), programs)

    def for_plan(self, careplan: dict[str, Any]) -> ProgramRules:
        """The rules of the first program the CarePlan belongs to, else the defaults."""
        for match, rules in self.programs:
            if _matches(match, careplan):
                return rules
        return self.default


def _checked(validator: SchemaValidator, path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = pointer_of(errors[0].absolute_path) or "/"
        raise MappingFileError(f"{path.name} {where}: {errors[0].message[:200]}")
    return data


def _build(rules: dict[str, Any], program: str | None, path: Path) -> ProgramRules:
    activities = {name: _activity(name, spec) for name, spec in rules["activities"].items()}
    triggers = tuple(_trigger(name, spec) for name, spec in rules["triggers"].items())
    for trigger in triggers:
        unknown = [a for a in trigger.activities if a not in activities]
        if unknown:
            raise MappingFileError(f"{path.name}: trigger {trigger.name} names unknown "
                                   f"activity {unknown[0]!r}")
    try:
        zone = ZoneInfo(rules["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingFileError(f"{path.name}: unknown time zone {rules['timezone']!r}") from None
    return ProgramRules(
        program=program, task_system=rules["task_identifier_system"],
        activity_system=rules["activity_code_system"], timezone=zone,
        holidays=frozenset(date.fromisoformat(d) for d in rules.get("holidays") or []),
        max_age_days=rules.get("max_age_days"),
        owner=tuple(rules["owner"]), lead_extension=rules.get("lead_extension", ""),
        triggers=triggers, activities=activities,
        activity_status=dict(rules["activity_status"]), overdue=dict(rules["overdue"]))


def _activity(name: str, spec: dict[str, Any]) -> Activity:
    return Activity(name=name, description=spec["description"], code=dict(spec["code"]),
                    days=int(spec["due"]["days"]),
                    business_days=spec["due"]["unit"] == "business",
                    priority=spec.get("priority"), satisfied_by=spec.get("satisfied_by"))


def _trigger(name: str, spec: dict[str, Any]) -> Trigger:
    return Trigger(name=name, status=frozenset(spec["status"]),
                   classes=frozenset(spec["class"]), from_end=spec["from"] == "end",
                   activities=tuple(spec["activities"]))


def _matches(match: dict[str, list[str]], careplan: dict[str, Any]) -> bool:
    """A category coding given as ``code`` or ``system|code``, or an instantiated URL."""
    wanted = set(match.get("category") or [])
    for category in careplan.get("category") or []:
        for coding in category.get("coding") or []:
            code = coding.get("code")
            if code in wanted or f"{coding.get('system')}|{code}" in wanted:
                return True
    urls = set(careplan.get("instantiatesCanonical") or []) | set(
        careplan.get("instantiatesUri") or [])
    return bool(urls & set(match.get("instantiates") or []))
