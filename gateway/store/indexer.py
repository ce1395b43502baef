"""Turn a resource into search-index rows, driven by the compiled R4 SearchParameters.

Each extracted value is interpreted by the parameter's type and the value's JSON shape
(http://hl7.org/fhir/R4/search.html#ptypes): a token comes from a code, Coding,
CodeableConcept, Identifier, ContactPoint or boolean; a date from a date string, Period or
Timing; a string from a string, HumanName or Address; and so on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from gateway.fhir.dates import parse_range, period_range
from gateway.fhir.references import parse_reference
from gateway.fhir.searchparams import registry

_MAX_STRING = 512
_MAX_URI = 1024
IndexRows = dict[str, list[dict[str, Any]]]


@lru_cache(maxsize=16384)
def normalize(text: str) -> str:
    """Case- and accent-insensitive form used by string search (R4 search.html#string).
    Remembered: names, cities and codes recur across the resources written."""
    if text.isascii():
        return text.casefold()[:_MAX_STRING]
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()[:_MAX_STRING]


def index_rows(resource_type: str, resource: dict[str, Any], base_url: str = "") -> IndexRows:
    """All index rows for one resource version, grouped by index table (``rid`` not set)."""
    rows: IndexRows = {}
    for param in registry().indexed(resource_type):
        assert param.extract is not None
        values = param.extract(resource)
        if not values:
            continue
        converter = _CONVERTERS[param.type]
        if param.system is not None:
            values = [_Coded(value, param.system) if isinstance(value, str) else value
                      for value in values]
        table_rows = rows.setdefault(param.type, [])
        seen: set[tuple[Any, ...]] = set()
        for value in values:
            for row in converter(value, base_url):
                key = tuple(row.values())
                if key not in seen:
                    seen.add(key)
                    row["type"] = resource_type
                    row["param"] = param.code
                    table_rows.append(row)
    return rows


class _Coded(str):
    """A primitive ``code`` value carrying the system its element's binding implies."""

    system: str

    def __new__(cls, value: str, system: str) -> _Coded:
        coded = super().__new__(cls, value)
        coded.system = system
        return coded


def _tokens(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, _Coded):
        yield {"system": value.system, "code": value[:_MAX_STRING]}
    elif isinstance(value, bool):
        yield {"system": None, "code": "true" if value else "false"}
    elif isinstance(value, str):
        yield {"system": None, "code": value[:_MAX_STRING]}
    elif isinstance(value, dict):
        yield from _token_object(value)


def _token_object(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "coding" in value:
        for coding in value.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code"):
                yield _token(coding.get("system"), coding["code"])
    elif "code" in value and isinstance(value["code"], str):
        yield _token(value.get("system"), value["code"])
    elif "value" in value and isinstance(value["value"], str):
        yield _token(value.get("system"), value["value"])


def _token(system: Any, code: str) -> dict[str, Any]:
    """A token from a Coding/Identifier/ContactPoint. Its system is '' when absent; NULL is
    kept for primitive codes whose binding implies no single system."""
    return {"system": system[:_MAX_STRING] if isinstance(system, str) else "",
            "code": code[:_MAX_STRING]}


def _strings(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        yield {"value": normalize(value), "exact": value[:_MAX_STRING]}
    elif isinstance(value, dict):
        for part in _string_parts(value):
            yield {"value": normalize(part), "exact": part[:_MAX_STRING]}


def _string_parts(value: dict[str, Any]) -> Iterator[str]:
    """The searchable parts of a HumanName or Address (and any other string-bearing object)."""
    for key in ("text", "family", "city", "district", "state", "postalCode", "country"):
        if isinstance(value.get(key), str):
            yield value[key]
    for key in ("given", "prefix", "suffix", "line"):
        for part in value.get(key) or []:
            if isinstance(part, str):
                yield part


def _references(value: Any, base_url: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):  # canonical or uri used as a reference
        yield {"target_type": None, "target_id": None, "url": value[:_MAX_URI]}
        return
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return
    reference = value["reference"]
    parsed = parse_reference(reference)
    if parsed and (parsed.base is None or _is_local(parsed.base, base_url)):
        yield {"target_type": parsed.type, "target_id": parsed.id, "url": None}
    else:
        yield {"target_type": None, "target_id": None, "url": reference[:_MAX_URI]}


def _is_local(base: str, base_url: str) -> bool:
    return bool(base_url) and base.rstrip("/") == base_url.rstrip("/")


def _dates(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        found = parse_range(value)
        if found:
            yield {"low": found[0], "high": found[1]}
    elif isinstance(value, dict):
        yield from _date_object(value)


def _date_object(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "start" in value or "end" in value:
        found = period_range(value)
        if found:
            yield {"low": found[0], "high": found[1]}
        return
    for event in value.get("event") or []:  # Timing
        yield from _dates(event, "")
    bounds = (value.get("repeat") or {}).get("boundsPeriod")
    if isinstance(bounds, dict):
        yield from _date_object(bounds)


def _quantities(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        code = value.get("code") or value.get("unit")
        yield {"value": float(value["value"]), "system": value.get("system"),
               "code": code if isinstance(code, str) else None}


def _numbers(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        yield {"value": float(value)}


def _uris(value: Any, _base: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        yield {"value": value[:_MAX_URI]}


_CONVERTERS = {
    "token": _tokens,
    "string": _strings,
    "reference": _references,
    "date": _dates,
    "quantity": _quantities,
    "number": _numbers,
    "uri": _uris,
}


def patient_of(resource_type: str, resource_id: str, rows: IndexRows) -> str | None:
    """The patient a resource belongs to (``Patient/id``), used to order sync per patient."""
    if resource_type == "Patient":
        return f"Patient/{resource_id}"
    for row in rows.get("reference", ()):
        if row["param"] in ("patient", "subject") and row["target_type"] == "Patient":
            return f"Patient/{row['target_id']}"
    return None
