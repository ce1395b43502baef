"""Plans and rosters read from files for ``gateway import``: JSON (one document or an array),
NDJSON (one document per line) and CSV rosters (one row per member; columns documented in
mappings/README.md). Each yields records that know where they came from (``file:line``), so a
failed record is reported with its line while the others are imported.

A CSV roster is the group of rows sharing ``source`` and ``rosterId``; it is one record (one
unit of work): a bad row fails its own roster, named by that row's line, and the other
rosters of the file are imported. A roster is never imported without one of its rows,
since a member left out would be taken as having left the team.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.ingest.plans import CAREPLAN, CARETEAM

MEMBER_COLUMNS = {"memberId": "id", "npi": "npi", "role": "role", "family": "family",
                  "relationship": "relationship", "phone": "phone", "email": "email",
                  "endpoint": "endpoint"}
ROSTER_COLUMNS = {"status": "status", "teamName": "name", "asOf": "asOf"}


@dataclass
class Record:
    """One document to import: its kind, raw JSON bytes, and where it came from."""

    where: str
    kind: str | None
    raw: bytes
    error: str | None = None
    lines: list[int] = field(default_factory=list)

    def locate(self, pointer: str | None) -> str:
        """``file:line`` of the row a pointer into a CSV roster names (``/members/2/...``)."""
        parts = (pointer or "").split("/")
        if self.lines and len(parts) > 2 and parts[1] == "members" and parts[2].isdigit():
            index = int(parts[2])
            if index < len(self.lines):
                return f"{self.where.split(':')[0]}:{self.lines[index]}"
        return self.where


def read_records(paths: list[Path]) -> Iterator[Record]:
    for path in paths:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            yield from _csv(path)
        elif suffix in (".ndjson", ".jsonl"):
            yield from _ndjson(path)
        else:
            yield from _json(path)


def kind_of(document: Any) -> str | None:
    """A plan has a ``planId``, a roster a ``rosterId``."""
    if isinstance(document, dict):
        if "planId" in document:
            return CAREPLAN
        if "rosterId" in document:
            return CARETEAM
    return None


def _record(where: str, document: Any) -> Record:
    kind = kind_of(document)
    error = None if kind else "neither a plan (planId) nor a roster (rosterId)"
    return Record(where, kind, orjson.dumps(document), error)


def _json(path: Path) -> Iterator[Record]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        yield Record(str(path), None, b"", f"not JSON: {error}")
        return
    if isinstance(data, list):
        for index, document in enumerate(data, 1):
            yield _record(f"{path}:#{index}", document)
    else:
        yield _record(str(path), data)


def _ndjson(path: Path) -> Iterator[Record]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                document = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                yield Record(f"{path}:{number}", None, line, f"not JSON: {error}")
                continue
            yield _record(f"{path}:{number}", document)


def _csv(path: Path) -> Iterator[Record]:
    rosters: dict[tuple[str, str], tuple[dict[str, Any], list[int]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            line = reader.line_num
            key = ((row.get("source") or "").strip(), (row.get("rosterId") or "").strip())
            if key not in rosters:
                rosters[key] = (_roster(row), [])
            document, lines = rosters[key]
            document["members"].append(_member(row))
            lines.append(line)
    for (source, roster), (document, lines) in rosters.items():
        first = lines[0]
        record = Record(f"{path}:{first}", CARETEAM, orjson.dumps(document), lines=lines)
        if not source or not roster:
            record.error = "source and rosterId are required"
        yield record


def _roster(row: dict[str, Any]) -> dict[str, Any]:
    """The roster-level columns of a row (the first row of a roster gives them)."""
    identifier = {"value": _cell(row, "patientId")}
    if _cell(row, "patientSystem"):
        identifier["system"] = _cell(row, "patientSystem")
    else:
        identifier["authority"] = _cell(row, "patientAuthority")
    document: dict[str, Any] = {
        "rosterId": _cell(row, "rosterId"), "source": _cell(row, "source"),
        "patient": {"identifiers": [{k: v for k, v in identifier.items() if v}]},
        "members": []}
    for column, key in ROSTER_COLUMNS.items():
        if _cell(row, column):
            document[key] = _cell(row, column)
    org = _organization(row, "managingOrg")
    if org:
        document["managingOrganization"] = org
    return document


def _member(row: dict[str, Any]) -> dict[str, Any]:
    member: dict[str, Any] = {key: _cell(row, column) for column, key in MEMBER_COLUMNS.items()
                              if _cell(row, column)}
    if _cell(row, "given"):
        member["given"] = _cell(row, "given").split()
    period = {k: _cell(row, k) for k in ("start", "end") if _cell(row, k)}
    if period:
        member["period"] = period
    if _cell(row, "lead").lower() in ("true", "yes", "1", "y"):
        member["lead"] = True
    org = _organization(row, "org")
    if org:
        member["organization"] = org
    return member


def _organization(row: dict[str, Any], prefix: str) -> dict[str, str]:
    org = {"id": _cell(row, f"{prefix}Id"), "npi": _cell(row, f"{prefix}Npi"),
           "name": _cell(row, f"{prefix}Name")}
    return {k: v for k, v in org.items() if v}


def _cell(row: dict[str, Any], column: str) -> str:
    return (row.get(column) or "").strip()
