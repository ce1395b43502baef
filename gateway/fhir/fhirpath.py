"""A compiler for the subset of FHIRPath used by the R4 SearchParameter expressions.

The 1,375 R4 search parameters use only paths, ``|`` unions, ``[n]`` indexes,
``.where(resolve() is Type)``, ``.where(field='value')``, ``as Type`` / ``.as(Type)`` and one
``exists() and ... != false`` (Patient.deceased). Each expression is compiled once into a
plain Python function over the resource's JSON dict, so indexing a resource on write costs a
few dictionary look-ups per parameter instead of a FHIRPath interpreter run.
(http://hl7.org/fhir/R4/searchparameter.html, http://hl7.org/fhirpath/N1/)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gateway.fhir.references import parse_reference

Extractor = Callable[[dict[str, Any]], list[Any]]
Step = Callable[[list[Any]], list[Any]]

_AS_INFIX = re.compile(
    r"^\(?\s*(?P<path>[^()]+?)\s+as\s+(?P<type>\w+)\s*\)?(?P<rest>(?:\.\w+)*)$"
)
_TOKEN = re.compile(r"\.?(?:(?P<name>[A-Za-z_]\w*)(?:\((?P<arg>[^()]*(?:\([^()]*\))?[^()]*)\))?"
                    r"|\[(?P<index>\d+)\])")


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath beyond the compiled subset."""


def split_union(expression: str) -> list[str]:
    """Split on top-level ``|``, ignoring those inside parentheses or quotes."""
    parts, depth, quoted, current = [], 0, False, []
    for char in expression:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "|" and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def compile_expression(expression: str) -> dict[str, Extractor]:
    """Compile an expression into one extractor per resource type it starts from."""
    compiled: dict[str, list[Extractor]] = {}
    for part in split_union(expression):
        root, extractor = _compile_part(part)
        compiled.setdefault(root, []).append(extractor)
    return {root: _union(extractors) for root, extractors in compiled.items()}


def _union(extractors: list[Extractor]) -> Extractor:
    if len(extractors) == 1:
        return extractors[0]

    def run(resource: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for extractor in extractors:
            out.extend(extractor(resource))
        return out

    return run


def _compile_part(part: str) -> tuple[str, Extractor]:
    part = part.strip()
    if " and " in part and part.endswith("!= false"):
        return _compile_exists_not_false(part)
    as_match = _AS_INFIX.match(part)
    if as_match:
        part = f"{as_match['path']}.as({as_match['type']}){as_match['rest']}"
    while part.startswith("(") and part.endswith(")"):
        part = part[1:-1].strip()
    tokens = list(_tokenize(part))
    if not tokens or tokens[0][0] is None:
        raise UnsupportedExpression(part)
    root = tokens[0][0]
    steps = _compile_steps(tokens[1:])
    return root, _chain(steps)


def _tokenize(part: str) -> list[tuple[str | None, str | None, str | None]]:
    position, tokens = 0, []
    while position < len(part):
        match = _TOKEN.match(part, position)
        if match is None or match.end() == position:
            raise UnsupportedExpression(part)
        tokens.append((match["name"], match["arg"], match["index"]))
        position = match.end()
    return tokens


def _compile_steps(tokens: list[tuple[str | None, str | None, str | None]]) -> list[Step]:
    steps: list[Step] = []
    index = 0
    while index < len(tokens):
        name, arg, position = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if position is not None:
            steps.append(_index_step(int(position)))
        elif arg is None and following and following[0] == "as" and following[1]:
            steps.append(_choice_step(name or "", following[1].strip()))
            index += 1
        elif arg is None:
            steps.append(_child_step(name or ""))
        elif name == "where":
            steps.append(_where_step(arg))
        elif name == "as":
            steps.append(_type_filter_step(arg.strip()))
        else:
            raise UnsupportedExpression(f"{name}({arg})")
        index += 1
    return steps


def _chain(steps: list[Step]) -> Extractor:
    def run(resource: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [resource]
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                return nodes
        return nodes

    return run


def _child_step(name: str) -> Step:
    """A child element; a choice element (``value[x]``) is found under any ``valueX`` key."""

    def run(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            value = node.get(name)
            if value is None:
                value = _choice_values(node, name)
            if isinstance(value, list):
                out.extend(value)
            elif value is not None:
                out.append(value)
        return out

    return run


def _choice_values(node: dict[str, Any], name: str) -> Any:
    size = len(name)
    for key, value in node.items():
        if len(key) > size and key.startswith(name) and key[size].isupper():
            return value
    return None


def _choice_step(name: str, type_name: str) -> Step:
    return _child_step(name + type_name[0].upper() + type_name[1:])


def _type_filter_step(type_name: str) -> Step:
    """``.as(Type)`` after a concrete element: keep it (types are not tracked at run time)."""
    return lambda nodes: nodes


def _index_step(position: int) -> Step:
    return lambda nodes: nodes[position:position + 1]


def _where_step(argument: str) -> Step:
    argument = argument.strip()
    resolve = re.fullmatch(r"resolve\(\)\s+is\s+(\w+)", argument)
    if resolve:
        return _reference_type_filter(resolve.group(1))
    equals = re.fullmatch(r"(\w+)\s*=\s*'([^']*)'", argument)
    if equals:
        field, wanted = equals.group(1), equals.group(2)
        return lambda nodes: [n for n in nodes if isinstance(n, dict) and n.get(field) == wanted]
    raise UnsupportedExpression(f"where({argument})")


def _reference_type_filter(type_name: str) -> Step:
    def run(nodes: list[Any]) -> list[Any]:
        out = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            reference = node.get("reference")
            parsed = parse_reference(reference) if isinstance(reference, str) else None
            if (parsed and parsed.type == type_name) or node.get("type") == type_name:
                out.append(node)
        return out

    return run


def _compile_exists_not_false(part: str) -> tuple[str, Extractor]:
    """``X.e.exists() and X.e != false``: true when the choice element is present and not
    the boolean false (Patient.deceased)."""
    path = part.split(".exists()")[0]
    root, _, element = path.partition(".")
    child = _child_step(element)

    def run(resource: dict[str, Any]) -> list[Any]:
        values = child([resource])
        if not values:
            return [False]
        return [values[0] is not False]

    return root, run
