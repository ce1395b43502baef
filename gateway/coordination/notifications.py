"""Apply a Da Vinci admit/transfer/discharge notification: the focus Encounter, with its
Patient, Practitioners, Locations and Organization found by identifier or created.

The notification carries the sender's whole Encounter, so it replaces the stored one (one per
visit, found by its first identifier), unless a notification with a later timestamp has
been applied already: then it is recorded but does not regress the newer state.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.coordination.identity import Resolver
from gateway.fhir.references import iter_reference_holders
from gateway.mapping.davinci import Notification
from gateway.mapping.issues import MappingError
from gateway.rest.interactions import FhirService
from gateway.store.repository import Repository


def apply_notification(service: FhirService, repo: Repository, base: str,
                       notification: Notification, *, source: str, late: bool) -> list[str]:
    """Write the notification's resources; returns the ``Type/id[/_history/n]`` written."""
    resolver = Resolver(service, repo, base, source)
    encounter = copy.deepcopy(notification.encounter)
    patient = notification.resolve(encounter.get("subject"))
    if patient is None or not patient.get("identifier"):
        raise MappingError("Encounter.subject must be a bundled Patient with an identifier.",
                           location="Encounter.subject")
    patient_id = resolver.patient(_clean(patient), update=not late)
    written = [f"Patient/{patient_id}"]
    encounter.pop("subject")
    for holder in list(iter_reference_holders(encounter)):
        _relink(resolver, notification, holder)
    encounter["subject"] = {"reference": f"Patient/{patient_id}"}
    existing = resolver.find_for_write("Encounter", [notification.visit])
    if late and existing:
        return [*written, f"Encounter/{existing[0]}"]
    body = _clean(encounter)
    body["meta"] = {"source": source}
    if existing:
        body["id"] = existing[0]
        stored = repo.update("Encounter", existing[0], body).resource
    else:
        stored = repo.create(body).resource
    return [*written, f"Encounter/{stored.id}/_history/{stored.version_id}"]


_LINKED = ("Practitioner", "Location", "Organization")


def _relink(resolver: Resolver, notification: Notification, holder: dict[str, Any]) -> None:
    """Point a reference at the stored copy of a bundled Practitioner, Location or
    Organization (found by identifier, else created); any other reference keeps only its
    display, so nothing points outside the store."""
    target = notification.resolve(holder)
    if target is None or target.get("resourceType") not in _LINKED:
        display = holder.get("display")
        holder.clear()
        if display:
            holder["display"] = display
        return
    body = _clean(target)
    stored_id = (resolver.find_or_create(body) if body.get("identifier")
                 else resolver.repo.create(body).resource.id)
    holder["reference"] = f"{target['resourceType']}/{stored_id}"


def _clean(resource: dict[str, Any]) -> dict[str, Any]:
    """A bundled resource as we store it: the sender's id and meta dropped."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k not in ("id", "meta")}
