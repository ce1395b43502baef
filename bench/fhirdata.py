"""Realistic small FHIR resources for the benchmark, and templates of them for wrk's Lua.

The resources are what a care-coordination client really sends - a CarePlan with status,
intent, category, subject, period, identifier and a few activities with a coded detail - so the
gateway does its real work on them (structural validation, required-code checks, reference
checks, search indexing). Cheaper bodies would flatter it.

wrk builds request bodies in Lua, so CarePlans are also rendered as templates: JSON text with
``@@NAME@@`` placeholders that ``bench.wrkscript`` turns into Lua string concatenations.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

# A few kinds of plan, so bodies (and the index rows they produce) are not all identical.
_VARIANTS: list[dict[str, Any]] = [
    {
        "title": "Type 2 diabetes follow-up",
        "condition": ("44054006", "Diabetes mellitus type 2"),
        "activities": [
            ("ServiceRequest", "698472009", "Blood glucose monitoring", "in-progress"),
            ("Appointment", "390906007", "Follow-up encounter", "scheduled"),
            ("MedicationRequest", "182840001", "Drug treatment", "not-started"),
        ],
    },
    {
        "title": "Heart failure care after discharge",
        "condition": ("84114007", "Heart failure"),
        "activities": [
            ("ServiceRequest", "225358003", "Wound care", "completed"),
            ("Appointment", "185389009", "Follow-up visit", "scheduled"),
            ("CommunicationRequest", "386053000", "Evaluation procedure", "in-progress"),
        ],
    },
    {
        "title": "COPD self-management",
        "condition": ("13645005", "Chronic obstructive lung disease"),
        "activities": [
            ("ServiceRequest", "229065009", "Exercise therapy", "in-progress"),
            ("MedicationRequest", "386053000", "Inhaler technique review", "not-started"),
            ("Appointment", "390906007", "Follow-up encounter", "scheduled"),
            ("ServiceRequest", "710081004", "Smoking cessation therapy", "on-hold"),
        ],
    },
]

SNOMED = "http://snomed.info/sct"
PATIENT = "@@PATIENT@@"
SEQ = "@@SEQ@@"
UUID = "@@UUID@@"


def variant_count() -> int:
    return len(_VARIANTS)


def care_plan(patient_id: str, seq: str, variant: int) -> dict[str, Any]:
    """One CarePlan for ``Patient/patient_id``; ``seq`` makes its identifier unique."""
    spec = _VARIANTS[variant % len(_VARIANTS)]
    _code, display = spec["condition"]
    return {
        "resourceType": "CarePlan",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.99999.1",
                        "value": f"cp-{seq}"}],
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": "734163000",
                                  "display": "Care plan"}]}],
        "title": spec["title"],
        "description": f"Plan of care for {display.lower()}.",
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2025-01-06", "end": "2025-12-31"},
        "addresses": [{"display": display}],
        "activity": [
            {"detail": {"kind": kind,
                        "code": {"coding": [{"system": SNOMED, "code": act_code,
                                             "display": act_display}]},
                        "status": status}}
            for kind, act_code, act_display, status in spec["activities"]
        ],
    }


def care_plan_template(variant: int) -> str:
    """A CarePlan as JSON text with ``@@PATIENT@@`` and ``@@SEQ@@`` placeholders."""
    return _compact(care_plan(PATIENT, SEQ, variant))


def transaction_entry_template(variant: int) -> str:
    """One transaction entry (POST CarePlan) with ``@@UUID@@``, ``@@PATIENT@@``, ``@@SEQ@@``."""
    return _compact({
        "fullUrl": f"urn:uuid:{UUID}",
        "resource": care_plan(PATIENT, SEQ, variant),
        "request": {"method": "POST", "url": "CarePlan"},
    })


def patient(patient_id: str, index: int, rng: random.Random) -> dict[str, Any]:
    """A small Patient with a client-assigned id (created with PUT, so ids are known up
    front and the load step needs no response parsing)."""
    given = rng.choice(["Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Greta", "Hugo"])
    family = rng.choice(["Meyer", "Schmidt", "Okafor", "Nguyen", "Rossi", "Dubois", "Kowalski"])
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.99999.2",
                        "value": f"MRN-{index:07d}"}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-"
                     f"{rng.randint(1, 28):02d}",
    }


def patient_ids(count: int, rng: random.Random) -> list[str]:
    """Random UUIDs (from ``rng``, so a seed reproduces them) shaped like server-made ids."""
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def patient_transaction(patients: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle that PUTs the given Patients."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
                  for p in patients],
    }


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
