"""Find or create the Patient, Practitioner, Location and Organization a message names.

Resources are found by business identifier inside the caller's unit of work. The common case
(it exists) is one indexed lookup of the ``identifier`` token; only when nothing is found does
the lookup go through the REST service's conditional match (R4 http.html#ccreate), which on
PostgreSQL also locks the criteria, so two messages naming the same new person or bed never
create it twice. A Patient merged away (``link.type = replaced-by``, A40) resolves to the
Patient that replaced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from gateway.errors import MultipleMatches
from gateway.rest.interactions import FhirService
from gateway.store.repository import Repository
from gateway.store.tables import INDEX_TABLES, resource_table

_TOKEN = INDEX_TABLES["token"]
T, R = _TOKEN.c, resource_table.c
# Built once: the statement is the same for every lookup, only the values change.
_BY_IDENTIFIER = (
    select(R.id).join_from(_TOKEN, resource_table, R.rid == T.rid)
    .where(T.type == bindparam("type"), T.param == "identifier",
           T.system == bindparam("system"), T.code == bindparam("code"),
           R.deleted.is_(False))
    .limit(2))


@dataclass
class Resolver:
    """Identifier lookups and creates on one repository (one unit of work)."""

    service: FhirService
    repo: Repository
    base: str
    source: str | None = None

    def find(self, resource_type: str, identifiers: list[dict[str, Any]]) -> list[str]:
        """Ids of the resources holding any of ``identifiers``, first identifier first."""
        found: list[str] = []
        for identifier in identifiers:
            ids = self._lookup(resource_type, identifier)
            if len(ids) > 1:
                raise MultipleMatches(f"More than one {resource_type} has the identifier "
                                      f"{_token(identifier)!r}.")
            found += [i for i in ids if i not in found]
        return found

    def find_for_write(self, resource_type: str,
                       identifiers: list[dict[str, Any]]) -> list[str]:
        """As ``find``; when nothing matches, look again holding the conditional-create
        lock, so the caller may create the resource without racing another writer."""
        found = self.find(resource_type, identifiers)
        if found or not identifiers:
            return found
        for identifier in identifiers:
            match = self.service.conditional_match(
                self.repo, self.base, resource_type,
                [("identifier", _token(identifier))], "create")
            if match is not None and match not in found:
                found.append(match)
        return found

    def _lookup(self, resource_type: str, identifier: dict[str, Any]) -> list[str]:
        rows = self.repo.conn.execute(_BY_IDENTIFIER, {
            "type": resource_type, "system": identifier.get("system") or "",
            "code": str(identifier["value"])})
        return [row.id for row in rows]

    def find_or_create(self, resource: dict[str, Any]) -> str:
        """The id of the resource with one of the body's identifiers; created if none."""
        resource_type = resource["resourceType"]
        found = self.find_for_write(resource_type, resource.get("identifier") or [])
        if found:
            return found[0]
        return self.repo.create(self._stamped(resource)).resource.id

    def patient(self, resource: dict[str, Any], *, update: bool = True,
                fill: bool = False) -> str:
        """The Patient with any of the message's PID-3 identifiers (following replaced-by
        links), updated with the message's identifiers and demographics; created if none.
        ``fill`` (with ``update`` off) adds only the elements the Patient lacks: a plan
        names a patient that its roster created with identifiers alone, and must not
        overwrite what an ADT feed said."""
        found = [self.survivor(p)
                 for p in self.find_for_write("Patient", resource["identifier"])]
        if not found:
            return self.repo.create(self._stamped(resource)).resource.id
        patient_id = found[0]
        if update or fill:
            current = self.repo.read("Patient", patient_id).json()
            changes = {k: v for k, v in resource.items()
                       if k != "identifier" and (update or k not in current)}
            merged = {**current, **changes}
            merged["identifier"] = _union(current.get("identifier") or [],
                                          resource["identifier"])
            merged["id"] = patient_id
            if _content(merged) != _content(current):
                self.repo.update("Patient", patient_id, self._stamped(merged))
        return patient_id

    def survivor(self, patient_id: str) -> str:
        """Follow ``Patient.link`` replaced-by (a merged record) to the surviving Patient."""
        seen = {patient_id}
        for _ in range(5):
            body = self.repo.read("Patient", patient_id).json()
            nxt = next((link["other"]["reference"].split("/", 1)[1]
                        for link in body.get("link") or []
                        if link.get("type") == "replaced-by"), None)
            if nxt is None or nxt in seen:
                return patient_id
            seen.add(nxt)
            patient_id = nxt
        return patient_id

    def _stamped(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self.source:
            resource["meta"] = {**(resource.get("meta") or {}), "source": self.source}
        return resource


def _token(identifier: dict[str, Any]) -> str:
    value = str(identifier["value"]).replace("\\", "\\\\").replace("|", "\\|") \
        .replace(",", "\\,").replace("$", "\\$")
    system = identifier.get("system")
    return f"{system}|{value}" if system else value


def _union(current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = {(i.get("system"), i.get("value")) for i in current}
    return current + [i for i in new if (i.get("system"), i.get("value")) not in keys]


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without meta: a message that says nothing new writes no new version."""
    return {k: v for k, v in resource.items() if k != "meta"}
