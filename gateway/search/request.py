"""A search, parsed once into a ``SearchRequest`` (http://hl7.org/fhir/R4/search.html).

The same object answers ``GET /CarePlan?...`` and decides whether a changed resource matches
a criteria Subscription, so both always agree on what a query means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import InvalidRequest, NotSupported
from gateway.fhir.searchparams import SearchParam, registry
from gateway.fhir.types import is_resource_type
from gateway.search import values as v

_MODIFIERS = {
    "token": {"not", "missing"},
    "string": {"exact", "contains", "missing"},
    "reference": {"missing"},  # plus :Type
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"below", "above", "missing"},
}
_CONTROL = {"_count", "_sort", "_summary", "_elements", "_include", "_revinclude", "_total",
            "_format", "_pretty", "_cursor"}
SUMMARY_MODES = {"true", "false", "text", "data", "count"}


@dataclass(frozen=True)
class Criterion:
    """One parameter with its alternatives (ORed); criteria of a request are ANDed.

    ``chain`` holds the criterion applied to the referenced resources of type
    ``target_types`` for chained parameters such as ``subject:Patient.identifier``.
    """

    name: str
    param: SearchParam
    modifier: str | None = None
    values: tuple[v.Value, ...] = ()
    target_types: tuple[str, ...] = ()
    chain: tuple[Criterion, ...] = ()
    missing: bool | None = None


@dataclass(frozen=True)
class Include:
    """``_include`` / ``_revinclude``: ``source:param[:target]``; ``param`` None means ``*``."""

    source: str
    param: str | None
    target: str | None = None
    iterate: bool = False


@dataclass(frozen=True)
class SortKey:
    name: str
    param: SearchParam
    descending: bool = False


@dataclass
class SearchRequest:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 50
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    total: str = "accurate"
    cursor: str | None = None
    ignored: list[str] = field(default_factory=list)

    def self_params(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The query as understood, for the Bundle's self link (ignored ones dropped)."""
        return [(k, val) for k, val in params if k not in self.ignored and k != "_cursor"]


def parse_search(resource_type: str, params: list[tuple[str, str]], *, base_url: str = "",
                 default_count: int = 50, max_count: int = 1000,
                 strict: bool = False) -> SearchRequest:
    """Parse query parameters; unknown ones are ignored and listed, or refused when strict
    (``Prefer: handling=strict``, search.html#errors)."""
    request = SearchRequest(resource_type, count=default_count)
    for name, value in params:
        if "\x00" in name or "\x00" in value:  # no FHIR value holds one; PostgreSQL text can't
            raise InvalidRequest(f"The search parameter {name!r} contains a NUL character.",
                                 expression=[name.replace("\x00", "")])
        head, _, modifier = name.partition(":")
        if head in ("_include", "_revinclude") and modifier in ("iterate", "recurse"):
            value, name = f"{value}:iterate", head  # R4 `_include:iterate=Type:param`
        if name in _CONTROL:
            _control(request, name, value, max_count)
            continue
        if value == "":
            continue  # an empty value is ignored, as HAPI FHIR does
        criterion = _criterion(resource_type, name, value, base_url)
        if criterion is None:
            if strict:
                raise InvalidRequest(f"Unknown search parameter {name!r} for {resource_type}.",
                                     expression=[name])
            request.ignored.append(name)
        else:
            request.criteria.append(criterion)
    return request


def _control(request: SearchRequest, name: str, value: str, max_count: int) -> None:
    if name == "_count":
        if not value.isdigit():
            raise InvalidRequest(f"_count must be a non-negative integer, not {value!r}.",
                                 expression=["_count"])
        request.count = min(int(value), max_count)
    elif name == "_sort":
        request.sort = [_sort_key(request.resource_type, part) for part in value.split(",")
                        if part]
    elif name == "_summary":
        if value not in SUMMARY_MODES:
            raise InvalidRequest(f"_summary must be one of {sorted(SUMMARY_MODES)}.",
                                 expression=["_summary"])
        request.summary = value
    elif name == "_elements":
        request.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif name in ("_include", "_revinclude"):
        target = request.include if name == "_include" else request.revinclude
        target.append(_include(name, value))
    elif name == "_total":
        request.total = value
    elif name == "_cursor":
        request.cursor = value


def _sort_key(resource_type: str, text: str) -> SortKey:
    descending = text.startswith("-")
    name = text.lstrip("-")
    param = registry().get(resource_type, name)
    if param is None:
        raise InvalidRequest(f"Unknown sort parameter {name!r} for {resource_type}.",
                             expression=["_sort"])
    return SortKey(name, param, descending)


def _include(name: str, text: str) -> Include:
    parts = text.split(":")
    iterate = False
    if parts[-1] in ("iterate", "recurse"):
        iterate = True
        parts = parts[:-1]
    if parts == ["*"]:
        return Include("*", None, None, iterate)
    if len(parts) not in (2, 3) or not is_resource_type(parts[0]):
        raise InvalidRequest(f"Invalid {name} {text!r}: expected Type:param[:TargetType].",
                             expression=[name])
    source, param_name = parts[0], parts[1]
    if param_name != "*":
        param = registry().get(source, param_name)
        if param is None or param.type != "reference":
            raise InvalidRequest(f"{name}={text}: {source} has no reference parameter "
                                 f"{param_name!r}.", expression=[name])
    target = parts[2] if len(parts) == 3 else None
    if target is not None and not is_resource_type(target):
        raise InvalidRequest(f"{name}={text}: unknown target type {target!r}.",
                             expression=[name])
    return Include(source, None if param_name == "*" else param_name, target, iterate)


def _criterion(resource_type: str, name: str, value: str, base_url: str) -> Criterion | None:
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    param = registry().get(resource_type, code)
    if param is None:
        return None
    modifier = modifier or None
    if dot:
        return _chained(resource_type, name, param, modifier, rest, value, base_url)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise InvalidRequest(f"{name} must be true or false.", expression=[name])
        return Criterion(name, param, modifier, missing=value == "true")
    target_types = _check_modifier(name, param, modifier)
    alternatives = tuple(_value(param, name, text, base_url) for text in v.or_values(value))
    return Criterion(name, param, modifier, alternatives, target_types)


def _check_modifier(name: str, param: SearchParam, modifier: str | None) -> tuple[str, ...]:
    if modifier is None:
        return ()
    if param.type == "reference" and is_resource_type(modifier):
        return (modifier,)
    if modifier not in _MODIFIERS.get(param.type, set()):
        raise NotSupported(f"The modifier :{modifier} is not supported for {param.type} "
                           f"parameter {param.code!r}.", expression=[name])
    return ()


def _chained(resource_type: str, name: str, param: SearchParam, modifier: str | None,
             rest: str, value: str, base_url: str) -> Criterion:
    if param.type != "reference":
        raise InvalidRequest(f"{name}: only reference parameters can be chained.",
                             expression=[name])
    if modifier is not None and not is_resource_type(modifier):
        raise InvalidRequest(f"{name}: :{modifier} is not a resource type.", expression=[name])
    targets = (modifier,) if modifier else param.targets
    pairs = [(t, _criterion(t, rest, value, base_url)) for t in targets]
    found = [(t, c) for t, c in pairs if c is not None]
    if not found:
        raise InvalidRequest(f"{name}: no target of {param.code!r} ({', '.join(targets)}) "
                             f"has a search parameter {rest.split('.')[0]!r}.",
                             expression=[name])
    return Criterion(name, param, modifier, (), tuple(t for t, _ in found),
                     tuple(c for _, c in found))


def _value(param: SearchParam, name: str, text: str, base_url: str) -> v.Value:
    kind = param.type
    if kind == "token":
        return v.parse_token(text)
    if kind == "date":
        return v.parse_date(name, text)
    if kind == "number":
        return v.parse_number(name, text)
    if kind == "quantity":
        return v.parse_quantity(name, text)
    if kind == "reference":
        return v.parse_reference_value(name, text, base_url)
    return v.parse_plain(text)
