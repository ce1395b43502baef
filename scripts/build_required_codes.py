#!/usr/bin/env python3
"""Build ``gateway/fhir/data/required-codes.json`` from the official FHIR R4 definitions.

FHIR R4 requires elements of type ``code`` with a *required* binding to hold a code from the
bound value set (http://hl7.org/fhir/R4/terminologies.html#required). The pydantic models we
use do not enforce this, so ``gateway.fhir.codes`` checks it at runtime from a compact table
that this script derives from the ``hl7.fhir.r4.examples@4.0.1`` npm package (which contains
every core StructureDefinition with a full snapshot, plus the ValueSets and CodeSystems).

Usage::

    python scripts/build_required_codes.py [PACKAGE_DIR]   # default /tmp/fhirdata/package

Output shape (compact JSON)::

    {
      "fhirVersion": "4.0.1",
      "valueSets": [[url, [code, ...], system], ...],
      "resources": {"Encounter": NODE, ...},
      "types": {"Quantity": NODE, "Encounter.statusHistory": NODE, ...}
    }

    NODE = {json_key: SPEC, ...}
    system = the one CodeSystem url all the value set's codes come from, or null. It is the
             system implied for a primitive ``code`` element bound to the value set, which
             search uses for ``system|code`` tokens (R4 search.html#token).
    SPEC = int           -> the value is a code (or list of codes) from valueSets[int]
         | "Resource"    -> the value is a resource (or list): dispatch on its resourceType
         | str           -> the value is an object (or list of objects) described by types[str]

``types`` holds complex datatypes (by name) and backbone elements (by element path, which is
also how ``contentReference`` targets such as ``#Questionnaire.item`` are resolved). Choice
elements are expanded to their JSON keys (``value[x]`` -> ``valueQuantity``, ...). Only keys
that can (transitively) lead to a checkable code are kept, so the runtime walk never visits
subtrees that cannot fail.

Value sets are expanded only when that is simple: ``compose.include`` entries with explicit
concept lists, or whole CodeSystems present in the package with ``content: complete`` (nested
concepts flattened, ``notSelectable`` ones dropped). Anything needing filters, other value sets,
exclusions or external code systems (e.g. BCP-13 mime types, ISO 4217 currencies) is skipped,
i.e. the element is not checked rather than checked wrongly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

DEFAULT_PACKAGE = Path("/tmp/fhirdata/package")
OUTPUT = Path(__file__).resolve().parents[1] / "gateway" / "fhir" / "data" / "required-codes.json"
FHIR_VERSION = "4.0.1"
RESOURCE = "Resource"  # SPEC marker: nested resource, dispatched on its resourceType

JSON = dict[str, Any]
# Build-time spec: ("codes", value set url) | ("type", node name) | ("resource", "")
Spec = tuple[str, str]


def _load_json_files(package: Path, prefix: str) -> Iterator[JSON]:
    for path in sorted(package.glob(f"{prefix}-*.json")):
        with path.open(encoding="utf-8") as fh:
            yield json.load(fh)


def _by_url(resources: Iterable[JSON]) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for res in resources:
        out.setdefault(res["url"], res)
    return out


def _flatten(concepts: list[JSON]) -> Iterator[str]:
    """All selectable codes of a CodeSystem, depth first, in definition order."""
    for concept in concepts:
        not_selectable = any(
            p.get("code") == "notSelectable" and p.get("valueBoolean") is True
            for p in concept.get("property", ())
        )
        if not not_selectable:
            yield concept["code"]
        yield from _flatten(concept.get("concept", []))


class Expander:
    """Expands value sets that can be expanded without a terminology server."""

    def __init__(self, value_sets: dict[str, JSON], code_systems: dict[str, JSON]) -> None:
        self.value_sets = value_sets
        self.code_systems = code_systems
        self.skipped: dict[str, str] = {}
        self.systems: dict[str, set[str]] = {}
        self._cache: dict[str, list[str] | None] = {}

    def expand(self, url: str) -> list[str] | None:
        if url not in self._cache:
            self._cache[url] = self._expand(url)
        return self._cache[url]

    def system(self, url: str) -> str | None:
        """The single code system of an expanded value set (None if several or unknown)."""
        systems = self.systems.get(url, set())
        return next(iter(systems)) or None if len(systems) == 1 else None

    def _skip(self, url: str, reason: str) -> None:
        self.skipped[url] = reason

    def _expand(self, url: str) -> list[str] | None:
        vs = self.value_sets.get(url)
        if vs is None:
            self._skip(url, "value set not in package")
            return None
        compose = vs.get("compose") or {}
        if compose.get("exclude"):
            self._skip(url, "uses compose.exclude")
            return None
        codes: dict[str, None] = {}  # ordered set
        systems = self.systems.setdefault(url, set())
        for include in compose.get("include", []):
            systems.add(include.get("system") or "")
            if include.get("filter") or include.get("valueSet"):
                self._skip(url, "include uses filter/valueSet")
                return None
            if "concept" in include:
                codes.update(dict.fromkeys(c["code"] for c in include["concept"]))
                continue
            system = include.get("system")
            cs = self.code_systems.get(system or "")
            if cs is None or cs.get("content") != "complete":
                self._skip(url, f"code system {system} not (completely) in package")
                return None
            codes.update(dict.fromkeys(_flatten(cs.get("concept", []))))
        if not codes:
            self._skip(url, "empty expansion")
            return None
        return list(codes)


def _upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


def _core_structure_definitions(package: Path) -> list[JSON]:
    """Non-abstract base resources and complex datatypes (no profiles, no primitives)."""
    return [
        sd
        for sd in _load_json_files(package, "StructureDefinition")
        if sd.get("kind") in ("resource", "complex-type")
        and sd.get("derivation") == "specialization"
        and not sd.get("abstract", False)
    ]


def collect_nodes(
    sds: list[JSON], expander: Expander
) -> tuple[dict[str, dict[str, Spec]], set[str]]:
    """Raw (unpruned) nodes for every resource, datatype and backbone element.

    Returns the nodes keyed by type name or backbone element path, and the resource names.
    """
    complex_types = {sd["type"] for sd in sds if sd["kind"] == "complex-type"}
    resources = {sd["type"] for sd in sds if sd["kind"] == "resource"}
    nodes: dict[str, dict[str, Spec]] = {}

    def spec_for(
        type_code: str, path: str, required_vs: str | None, parents: set[str]
    ) -> Spec | None:
        if type_code == "code" and required_vs and expander.expand(required_vs):
            return ("codes", required_vs)
        if type_code in complex_types:
            return ("type", type_code)
        if type_code == RESOURCE:
            return ("resource", "")
        if type_code in ("BackboneElement", "Element") and path in parents:
            nodes.setdefault(path, {})
            return ("type", path)
        return None

    for sd in sds:
        elements = sd["snapshot"]["element"]
        parents = {el["path"].rsplit(".", 1)[0] for el in elements[1:]}
        nodes[sd["type"]] = {}
        for el in elements[1:]:
            path: str = el["path"]
            parent, name = path.rsplit(".", 1)
            node = nodes.setdefault(parent, {})
            if ref := el.get("contentReference"):
                node[name] = ("type", ref.removeprefix("#"))
                continue

            binding = el.get("binding") or {}
            required_vs = None
            if binding.get("strength") == "required" and binding.get("valueSet"):
                required_vs = binding["valueSet"].split("|", 1)[0]  # drop |version

            type_codes = [t["code"] for t in el.get("type", [])]
            if name.endswith("[x]"):  # choice: one JSON key per type, e.g. valueQuantity
                for code in type_codes:
                    if spec := spec_for(code, path, required_vs, parents):
                        node[name[:-3] + _upper_first(code)] = spec
            elif len(type_codes) == 1:
                if spec := spec_for(type_codes[0], path, required_vs, parents):
                    node[name] = spec
            elif type_codes:
                raise ValueError(f"unexpected multi-typed element {path}: {type_codes}")
    return nodes, resources


def prune(nodes: dict[str, dict[str, Spec]], resources: set[str]) -> dict[str, dict[str, Spec]]:
    """Keep only keys that can lead to a code check (fixpoint over the type graph)."""
    useful: set[str] = set()
    any_resource_useful = False
    changed = True
    while changed:
        changed = False
        for name, node in nodes.items():
            if name in useful:
                continue
            for kind, target in node.values():
                if (
                    kind == "codes"
                    or (kind == "type" and target in useful)
                    or (kind == "resource" and any_resource_useful)
                ):
                    useful.add(name)
                    any_resource_useful |= name in resources
                    changed = True
                    break

    def keep(spec: Spec) -> bool:
        kind, target = spec
        return (
            kind == "codes"
            or (kind == "type" and target in useful)
            or (kind == "resource" and any_resource_useful)
        )

    return {
        name: {key: spec for key, spec in node.items() if keep(spec)}
        for name, node in nodes.items()
        if name in useful
    }


def build(package: Path) -> tuple[JSON, Expander]:
    sds = _core_structure_definitions(package)
    if not sds:
        raise SystemExit(f"no StructureDefinitions found in {package}")
    expander = Expander(
        _by_url(_load_json_files(package, "ValueSet")),
        _by_url(_load_json_files(package, "CodeSystem")),
    )
    raw, resources = collect_nodes(sds, expander)
    for node in raw.values():  # every contentReference must name a backbone element
        for kind, target in node.values():
            if kind == "type" and target not in raw:
                raise ValueError(f"unresolved reference to {target}")
    nodes = prune(raw, resources)

    vs_index: dict[str, int] = {}
    value_sets: list[list[Any]] = []

    def encode(spec: Spec) -> int | str:
        kind, target = spec
        if kind == "codes":
            if target not in vs_index:
                vs_index[target] = len(value_sets)
                value_sets.append([target, expander.expand(target), expander.system(target)])
            return vs_index[target]
        return RESOURCE if kind == "resource" else target

    out_resources: JSON = {}
    out_types: JSON = {}
    for name in sorted(nodes):
        encoded = {key: encode(spec) for key, spec in nodes[name].items()}
        (out_resources if name in resources else out_types)[name] = encoded
    table = {
        "fhirVersion": FHIR_VERSION,
        "valueSets": value_sets,
        "resources": out_resources,
        "types": out_types,
    }
    return table, expander


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "package",
        nargs="?",
        type=Path,
        default=DEFAULT_PACKAGE,
        help=f"unpacked hl7.fhir.r4.examples package dir (default {DEFAULT_PACKAGE})",
    )
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help="output JSON file")
    args = parser.parse_args(argv)

    table, expander = build(args.package)
    text = json.dumps(table, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n", encoding="utf-8")
    print(
        f"wrote {args.output} ({len(text)} bytes): {len(table['resources'])} resources, "
        f"{len(table['types'])} types/backbones, {len(table['valueSets'])} value sets; "
        f"{len(expander.skipped)} required value sets not expandable:",
        file=sys.stderr,
    )
    for url, reason in sorted(expander.skipped.items()):
        print(f"  skipped {url}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
