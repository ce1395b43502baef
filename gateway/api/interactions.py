"""Which interaction an HTTP request is, and which scope permissions it needs (pure).

The FHIR interactions of R4 http.html map to SMART v2 permissions (SMART App Launch,
scopes-and-launch-context.html): read/vread/instance history ``r``, search and type/system
history ``s``, create ``c``, update (and conditional update) ``u``, delete ``d``.
Transactions and batches are checked per entry once their body is read
(api/guards.py). Inbound messages need create and update on what they write; the message
store, delivery queue and audit log are for administrators.

The patient timeline (``/patients/{id}/timeline``) and the measures (``/measures``,
``/measures.csv``) are views over several resource types, so they need read (``r``) on
every type they show: the timeline on Encounter, CarePlan, CareTeam and Task, the measures
on Encounter, CareTeam and CarePlan. A token missing one of them is refused (403), not
served a partial view that would look complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.store.access import ADMIN_ONLY_TYPES

PUBLIC = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration",
                    "/.well-known/smart-configuration", "/auth/token", "/docs",
                    "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/sync/topics"})
PROTECTED_PREFIXES = ("/fhir", "/hl7v2", "/ingest", "/sync")
_TYPE = re.compile(r"^[A-Z][A-Za-z]*$")
_TIMELINE = re.compile(r"^/patients/([^/]+)/timeline$")
MEASURES = frozenset({"/measures", "/measures.csv"})
TIMELINE_TYPES = ("Encounter", "CarePlan", "CareTeam", "Task")
MEASURE_TYPES = ("Encounter", "CareTeam", "CarePlan")
# ADT messages and Da Vinci notifications write these (mappings/ and ingest/).
_MESSAGE_TYPES = ("Patient", "Encounter", "Organization", "Practitioner", "Location")
_PLAN_TYPES = ("CarePlan", "CareTeam", "Goal", "Condition", "Task", "Patient",
               "Practitioner", "Organization")
ADMIN_TYPES = ADMIN_ONLY_TYPES


@dataclass(frozen=True)
class Interaction:
    """What a request does: a name for the audit trail, the resource it concerns, the
    (type, permission) pairs it needs, and whether only administrators may do it."""

    name: str
    resource_type: str | None = None
    resource_id: str | None = None
    needs: tuple[tuple[str, str], ...] = ()
    admin: bool = False
    write: bool = False
    history_all: bool = False
    refused: bool = False  # nobody may: AuditEvents are written by the gateway alone


def is_protected(path: str) -> bool:
    if path in PUBLIC:
        return False
    if is_view(path):
        return True
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def is_view(path: str) -> bool:
    """The JSON/CSV views over the store (timeline, measures) that the coordinator pages
    link to: a client's token or a signed-in person's session opens them."""
    return path in MEASURES or _TIMELINE.match(path) is not None


def classify(method: str, path: str) -> Interaction:
    """The interaction of ``method path`` (a protected path)."""
    if path.startswith("/fhir"):
        return _fhir(method, [s for s in path[len("/fhir"):].split("/") if s])
    timeline = _TIMELINE.match(path)
    if timeline is not None:
        return Interaction("read", "Patient", timeline.group(1), _reads(TIMELINE_TYPES))
    if path in MEASURES:
        return Interaction("search", needs=_reads(MEASURE_TYPES))
    if path == "/hl7v2" and method == "POST":
        return Interaction("ingest", needs=_writes(_MESSAGE_TYPES), write=True)
    if path in ("/ingest/careplan", "/ingest/careteam") and method == "POST":
        return Interaction("ingest", needs=_writes(_PLAN_TYPES), write=True)
    return Interaction("operation", admin=True, write=method != "GET")


def _reads(types: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((t, "r") for t in types)


def _writes(types: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((t, p) for t in types for p in "cu")


def _fhir(method: str, parts: list[str]) -> Interaction:
    if not parts:
        return Interaction("transaction", write=True)  # entries checked when read
    if parts == ["$process-message"]:
        return Interaction("operation", needs=_writes(_MESSAGE_TYPES), write=True)
    if parts == ["_history"]:
        return Interaction("history", needs=(("*", "s"),), history_all=True)
    kind = parts[0]
    if not _TYPE.match(kind):
        return Interaction("operation", admin=True)
    interaction = _on_type(method, kind, parts[1:])
    if kind in ADMIN_TYPES:
        return Interaction(interaction.name, interaction.resource_type,
                           interaction.resource_id, interaction.needs, admin=True,
                           write=interaction.write, history_all=interaction.history_all,
                           refused=interaction.write or interaction.name == "operation")
    return interaction


def _on_type(method: str, kind: str, rest: list[str]) -> Interaction:
    if not rest:
        name, permission = {"GET": ("search", "s"), "POST": ("create", "c"),
                            "PUT": ("update", "u"), "DELETE": ("delete", "d")}.get(
                                method, ("operation", "r"))
        return Interaction(name, kind, needs=((kind, permission),),
                           write=method in ("POST", "PUT", "DELETE"))
    if rest == ["_search"]:
        return Interaction("search", kind, needs=((kind, "s"),))
    if rest == ["_history"]:
        return Interaction("history", kind, needs=((kind, "s"),), history_all=True)
    if rest[0].startswith("$"):
        return Interaction("operation", kind, needs=((kind, "r"),))
    rid = rest[0]
    if len(rest) == 1:
        name, permission = {"GET": ("read", "r"), "PUT": ("update", "u"),
                            "DELETE": ("delete", "d")}.get(method, ("operation", "r"))
        return Interaction(name, kind, rid, ((kind, permission),),
                           write=method in ("PUT", "DELETE"))
    if rest[1].startswith("$"):
        return Interaction("operation", kind, rid, ((kind, "r"),))
    name = "vread" if len(rest) == 3 else "history"
    return Interaction(name, kind, rid, ((kind, "r"),))
