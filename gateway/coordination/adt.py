"""Apply a mapped ADT message to the store: one visit's Encounter, its Patient and the
Practitioner / Location / Organization it names, or an A40 patient merge.

Runs inside the caller's unit of work (the caller commits). Every write goes through the
Repository and carries ``meta.source`` naming the stored inbound message (the FHIR R4
provenance of a version: resource.html#Meta).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.coordination.encounter_fold import EncounterEvent, fold
from gateway.coordination.identity import Resolver
from gateway.mapping.adt import MappedAdt, copy_of
from gateway.mapping.issues import MappingIssue
from gateway.rest.interactions import FhirService
from gateway.store import query
from gateway.store.repository import Repository


@dataclass
class AdtResult:
    """What one message changed (``Type/id/_history/n``) and what it reported."""

    resources: list[str] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)


class AdtWorkflow:
    """Admit/transfer/discharge/cancel/merge over one repository."""

    def __init__(self, service: FhirService, base: str = "") -> None:
        self.service = service
        self.base = base

    def apply(self, repo: Repository, mapped: MappedAdt, *, source: str,
              history: list[tuple[MappedAdt, str]] | None = None) -> AdtResult:
        """Apply ``mapped``. ``history`` (the visit's messages in event-time order, this one
        included) is given when the message is older than one already applied: the
        Encounter is then rebuilt from the whole sequence instead of regressed."""
        resolver = Resolver(self.service, repo, self.base, source)
        result = AdtResult(issues=list(mapped.issues))
        if mapped.action == "merge-patient":
            self._merge(resolver, mapped, result)
            return result
        sequence = history or [(mapped, source)]
        late = history is not None  # an older message: it must not overwrite demographics
        events = [self._event(resolver, m, s, update_patient=m is mapped and not late)
                  for m, s in sequence]
        result.resources.append(f"Patient/{events[-1].subject.split('/', 1)[1]}")
        encounter_id = _single(resolver.find_for_write("Encounter", [events[-1].identifier]))
        state = None
        if encounter_id and history is None:
            state = repo.read("Encounter", encounter_id).json()
        for event in events:
            state = fold(state, event)
        assert state is not None
        if history is not None:
            state["meta"] = {"source": source}
        written = self._write(repo, encounter_id, state)
        result.resources.append(f"Encounter/{written[0]}/_history/{written[1]}")
        return result

    def _event(self, resolver: Resolver, mapped: MappedAdt, source: str, *,
               update_patient: bool) -> EncounterEvent:
        resolver.source = source
        patient = resolver.patient(_body(mapped.patient), update=update_patient)
        organization = (resolver.find_or_create(_body(mapped.organization))
                        if mapped.organization else None)
        location = None
        if mapped.location is not None:
            body = _body(mapped.location)
            if organization:
                body["managingOrganization"] = {"reference": f"Organization/{organization}"}
            location = (f"Location/{resolver.find_or_create(body)}", body.get("name", ""))
        participants = [(role, f"Practitioner/{resolver.find_or_create(_body(p))}",
                         _display(p)) for role, p in mapped.participants]
        assert mapped.visit is not None
        time = mapped.header.event_time.text if mapped.header.event_time else None
        return EncounterEvent(
            action=mapped.action, time=time, status=mapped.status,
            elements=mapped.encounter, identifier=dict(mapped.visit),
            subject=f"Patient/{patient}", location=location, participants=participants,
            service_provider=f"Organization/{organization}" if organization else None,
            source=source)

    @staticmethod
    def _write(repo: Repository, encounter_id: str | None,
               body: dict[str, Any]) -> tuple[str, int]:
        """Write the folded Encounter: the stored state, the mapping's Encounter elements
        and references of the fold's making."""
        if encounter_id is None:
            stored = repo.create(body).resource
        else:
            body["id"] = encounter_id
            stored = repo.update("Encounter", encounter_id, body).resource
        return stored.id, stored.version_id

    def _merge(self, resolver: Resolver, mapped: MappedAdt, result: AdtResult) -> None:
        """A40 (HL7 v2.5 section 3.3.40): the MRG-1 record is replaced by the PID-3 one;
        Patient.link says so both ways (R4 patient.html#links) and the merged record's
        Encounters are re-pointed to the survivor."""
        pairs = mapped.merges or [(mapped.patient, mapped.prior_patient_identifiers)]
        for patient, prior_identifiers in pairs:
            self._merge_pair(resolver, _body(patient), prior_identifiers, result)

    def _merge_pair(self, resolver: Resolver, patient: dict[str, Any],
                    prior_identifiers: list[dict[str, Any]], result: AdtResult) -> None:
        survivor = resolver.patient(patient)
        result.resources.append(f"Patient/{survivor}")
        priors = [resolver.survivor(p) for p in resolver.find("Patient", prior_identifiers)]
        priors = [p for p in dict.fromkeys(priors) if p != survivor]
        if not priors:
            result.issues.append(MappingIssue(
                "MRG-1", "MRG-1 names no known patient; nothing was merged."))
            return
        for prior in priors:
            _link(resolver.repo, prior, survivor, "replaced-by", active=False)
            _link(resolver.repo, survivor, prior, "replaces")
            result.resources.append(f"Patient/{prior}")
            result.resources += self._repoint(resolver, prior, survivor)

    def _repoint(self, resolver: Resolver, prior: str, survivor: str) -> list[str]:
        request = self.service.parse(self.base, "Encounter",
                                     [("subject", f"Patient/{prior}"), ("_count", "1000")])
        page = query.run_page(resolver.repo.conn, request)
        moved = []
        for stored in resolver.repo.load_many(page.rids).values():
            body = stored.json()
            body["subject"] = {"reference": f"Patient/{survivor}"}
            body["meta"] = {"source": resolver.source} if resolver.source else {}
            written = resolver.repo.update("Encounter", stored.id, body).resource
            moved.append(f"Encounter/{written.id}/_history/{written.version_id}")
        return moved


def _link(repo: Repository, patient: str, other: str, kind: str, *,
          active: bool | None = None) -> None:
    body = repo.read("Patient", patient).json()
    links = [link for link in body.get("link") or []
             if link.get("other", {}).get("reference") != f"Patient/{other}"]
    body["link"] = [*links, {"other": {"reference": f"Patient/{other}"}, "type": kind}]
    if active is not None:
        body["active"] = active
    repo.update("Patient", patient, body)


def _body(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy of a mapped resource to write: the mapped message stays as mapped (a retried
    transaction applies it again)."""
    return copy_of(resource)


def _display(practitioner: dict[str, Any]) -> str:
    names = practitioner.get("name") or []
    if not names:
        return ""
    name = names[0]
    return " ".join([*(name.get("prefix") or []), *(name.get("given") or []),
                     name.get("family") or ""]).strip()


def _single(ids: list[str]) -> str | None:
    return ids[0] if ids else None
