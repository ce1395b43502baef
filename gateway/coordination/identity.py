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

from gateway.errors import MultipleMatches
from gateway.rest.interactions import FhirService
from gateway.store.repository import Repository


@dataclass
class Resolver:
    """Identifier lookups and creates on one repository (one unit of work)."""

    service: FhirService
    repo: Repository
    base: str
    source: str | None = None

    def find(self, resource_type: str, identifiers: list[dict[str, Any]]) -> list[str]:
        """Ids of the resources holding any of ``identifiers``, first identifier first."""
        keys = [_key(identifier) for identifier in identifiers]
        matches = self.repo.ids_by_identifier(resource_type, list(dict.fromkeys(keys)))
        found: list[str] = []
        for identifier, key in zip(identifiers, keys, strict=True):
            ids = matches.get(key, [])
            if len(ids) > 1:
                raise MultipleMatches(f"More than one {resource_type} has the identifier "
                                      f"{_token(identifier)!r}.")
            found += [i for i in ids if i not in found]
        return found

    def find_for_write(self, resource_type: str,
                       identifiers: list[dict[str, Any]]) -> list[str]:
        """As ``find``; when nothing matches, look again holding the conditional-create
        lock, so the caller may create the resource without racing another writer. (On
        SQLite the transaction holds the database's write lock already: ``find`` in it is
        final, except for an identifier without a system, which the token search matches
        in any system.)"""
        found = self.find(resource_type, identifiers)
        if found or not identifiers:
            return found
        for identifier in identifiers:
            if self.repo.db.is_sqlite and identifier.get("system"):
                continue
            match = self.service.conditional_match(
                self.repo, self.base, resource_type,
                [("identifier", _token(identifier))], "create")
            if match is not None and match not in found:
                found.append(match)
        return found

    def find_or_create(self, resource: dict[str, Any]) -> str:
        """The id of the resource with one of the body's identifiers; created if none."""
        return self.resolve(resource)[0]

    def resolve(self, resource: dict[str, Any]) -> tuple[str, bool]:
        """``find_or_create`` with whether it created: (id, created)."""
        resource_type = resource["resourceType"]
        found = self.find_for_write(resource_type, resource.get("identifier") or [])
        if found:
            return found[0], False
        return self._create(resource), True

    def patient(self, resource: dict[str, Any], *, update: bool = True,
                fill: bool = False) -> str:
        """The Patient with any of the message's PID-3 identifiers (following replaced-by
        links), updated with the message's identifiers and demographics; created if none.
        ``fill`` (with ``update`` off) adds only the elements the Patient lacks: a plan
        names a patient that its roster created with identifiers alone, and must not
        overwrite what an ADT feed said."""
        return self.resolve_patient(resource, update=update, fill=fill)[0]

    def resolve_patient(self, resource: dict[str, Any], *, update: bool = True,
                        fill: bool = False) -> tuple[str, bool]:
        """``patient`` with whether it created: (id, created)."""
        found = [self._follow(p) for p in self.find_for_write("Patient", resource["identifier"])]
        if not found:
            return self._create(resource), True
        patient_id, current = found[0]
        if update or fill:
            changes = {k: v for k, v in resource.items()
                       if k != "identifier" and (update or k not in current)}
            merged = {**current, **changes}
            merged["identifier"] = _union(current.get("identifier") or [],
                                          resource["identifier"])
            merged["id"] = patient_id
            if _content(merged) != _content(current):
                self.repo.update("Patient", patient_id, self._stamped(merged))
        return patient_id, False

    def survivor(self, patient_id: str) -> str:
        """Follow ``Patient.link`` replaced-by (a merged record) to the surviving Patient."""
        return self._follow(patient_id)[0]

    def _follow(self, patient_id: str) -> tuple[str, dict[str, Any]]:
        """The surviving Patient's id and current body (read once, for ``patient``)."""
        seen = {patient_id}
        body = self.repo.read("Patient", patient_id).json()
        for _ in range(5):
            nxt = next((link["other"]["reference"].split("/", 1)[1]
                        for link in body.get("link") or []
                        if link.get("type") == "replaced-by"), None)
            if nxt is None or nxt in seen:
                break
            seen.add(nxt)
            patient_id = nxt
            body = self.repo.read("Patient", patient_id).json()
        return patient_id, body

    def _create(self, resource: dict[str, Any]) -> str:
        return self.repo.create(self._stamped(resource)).resource.id

    def _stamped(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self.source:
            resource["meta"] = {**(resource.get("meta") or {}), "source": self.source}
        return resource


def _key(identifier: dict[str, Any]) -> tuple[str, str]:
    """(system, value) as the search index holds an Identifier's token."""
    return identifier.get("system") or "", str(identifier["value"])


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
