"""Parsing of search values by parameter type (http://hl7.org/fhir/R4/search.html#ptypes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gateway.errors import InvalidRequest
from gateway.fhir.dates import parse_range
from gateway.fhir.references import parse_reference
from gateway.fhir.types import is_resource_type, is_valid_id

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIXED = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+0-9.])")


@dataclass(frozen=True)
class Value:
    """One alternative of a search parameter value (values separated by ``,`` are ORed)."""

    raw: str
    prefix: str = "eq"
    system: str | None = None  # token / quantity system
    code: str | None = None  # token code / quantity unit code
    has_system: bool = False  # the token value had a '|'
    low: float | None = None  # date / number / quantity range
    high: float | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    url: str | None = None


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` unless escaped with a backslash; unescape ``\\,`` ``\\|`` ``\\$``."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            index += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _split_token(text: str) -> list[str]:
    """Split a token on its first unescaped ``|`` while keeping escapes for later."""
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "|":
            return [text[:index], text[index + 1:]]
        index += 1
    return [text]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def or_values(text: str) -> list[str]:
    """The comma-separated alternatives, escapes kept for the type-specific parser."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index:index + 2])
            index += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def parse_token(text: str) -> Value:
    pieces = _split_token(text)
    if len(pieces) == 1:
        return Value(raw=text, code=_unescape(text) or None)
    system, code = _unescape(pieces[0]), _unescape(pieces[1])
    return Value(raw=text, system=system or None, code=code or None, has_system=True)


def _prefix(text: str) -> tuple[str, str]:
    match = _PREFIXED.match(text)
    if match:
        return match.group(1), text[2:]
    return "eq", text


def parse_date(name: str, text: str) -> Value:
    prefix, rest = _prefix(text)
    found = parse_range(rest)
    if found is None:
        raise InvalidRequest(f"Invalid date {text!r} for search parameter {name!r}: expected "
                             "[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|+hh:mm]]]].",
                             expression=[name])
    return Value(raw=text, prefix=prefix, low=found[0], high=found[1])


def _decimal_range(name: str, text: str) -> tuple[float, float, float]:
    """The value and its implicit precision range: ``100`` means [99.5, 100.5)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest(f"Invalid number {text!r} for search parameter {name!r}.",
                             expression=[name]) from None
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(number), float(number - half), float(number + half)


def parse_number(name: str, text: str) -> Value:
    prefix, rest = _prefix(text)
    value, low, high = _decimal_range(name, rest)
    return Value(raw=text, prefix=prefix, low=low, high=high, code=str(value))


def parse_quantity(name: str, text: str) -> Value:
    prefix, rest = _prefix(text)
    pieces = split_escaped(rest, "|")
    _, low, high = _decimal_range(name, pieces[0])
    system = pieces[1] if len(pieces) > 1 and pieces[1] else None
    code = pieces[2] if len(pieces) > 2 and pieces[2] else None
    return Value(raw=text, prefix=prefix, low=low, high=high, system=system, code=code)


def parse_reference_value(name: str, text: str, base_url: str) -> Value:
    parsed = parse_reference(text)
    if parsed and (parsed.base is None or parsed.base.rstrip("/") == base_url.rstrip("/")):
        return Value(raw=text, ref_type=parsed.type, ref_id=parsed.id)
    if "/" not in text and is_valid_id(text):
        return Value(raw=text, ref_id=text)
    if text.startswith(("http:", "https:", "urn:")):
        return Value(raw=text, url=text)
    raise InvalidRequest(f"Invalid reference {text!r} for search parameter {name!r}: expected "
                         "Type/id, id or an absolute URL.", expression=[name])


def parse_plain(text: str) -> Value:
    return Value(raw=_unescape(text))


def known_target(name: str) -> bool:
    return is_resource_type(name)
