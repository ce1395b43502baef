"""The timeline's reads: one query per source, each keyed by the patient.

Resource versions are found through the search index (``idx_reference`` rows of the
``patient`` / ``subject`` parameters that point at the patient, served by
``ix_reference_target``), then read by primary key from ``resource_version``: every version of
every Encounter, CarePlan, CareTeam and Task of the patient in one statement, never one query
per resource. Notifications come from the sync tables by the event's patient
(``ix_sync_event_patient``). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store import query
from gateway.store.db import Database
from gateway.store.query import Queryable

TIMELINE_TYPES = ("Encounter", "CarePlan", "CareTeam", "Task")

_VERSIONS = (
    "SELECT v.type, v.id, v.version_id, v.last_updated, v.deleted, v.body "
    "FROM resource_version v WHERE v.rid IN ("
    "SELECT x.rid FROM idx_reference x WHERE x.target_type = 'Patient' AND x.target_id = ? "
    "AND x.param IN ('patient', 'subject') AND x.type IN ({types})) "
    "ORDER BY v.rid, v.version_id"
)
_DELIVERIES = (
    "SELECT d.id, d.status, d.delivered_at, d.last_status, d.last_error, d.attempts, "
    "s.endpoint, s.topic, s.resource_id, e.type, e.id, e.version_id, "
    "(SELECT MAX(a.started_at) FROM sync_attempt a WHERE a.delivery_id = d.id) "
    "FROM sync_event e JOIN sync_delivery d ON d.event_pk = e.pk "
    "JOIN sync_subscription s ON s.sid = d.sid "
    "WHERE e.patient = ? AND d.status IN ('delivered', 'failed') ORDER BY d.id"
)
_MESSAGES = ("SELECT id, message_type, event_time FROM inbound_message "
             "WHERE id IN ({marks})")
_CURRENT = (
    "SELECT r.type, r.id, v.body FROM resource r JOIN resource_version v "
    "ON v.rid = r.rid AND v.version_id = r.version_id "
    "WHERE r.type = ? AND r.id IN ({marks}) AND r.deleted = ?"
)


@dataclass(frozen=True)
class Version:
    """One stored version of one of the patient's resources, its body parsed."""

    type: str
    id: str
    version_id: int
    last_updated: float
    deleted: bool
    body: dict[str, Any]

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version_id}"


@dataclass(frozen=True)
class Delivery:
    """One finished notification about the patient, to one recipient."""

    id: int
    status: str
    time: float | None
    http_status: int | None
    error: str | None
    attempts: int
    endpoint: str
    recipient: str
    focus: str


@contextmanager
def reading(db: Database) -> Iterator[Queryable]:
    """A read connection seeing one committed state: the reader's snapshot on SQLite (no
    pool checkout), a pooled connection on PostgreSQL."""
    if db.is_sqlite:
        with db.reader.snapshot() as connection:
            yield connection
        return
    with db.engine.connect() as connection:
        yield connection
        connection.rollback()


def patient_versions(conn: Queryable, patient_id: str,
                     types: tuple[str, ...] = TIMELINE_TYPES) -> dict[str, list[Version]]:
    """Every version of the patient's resources of ``types``, grouped by ``Type/id``, oldest
    first."""
    sql = _VERSIONS.format(types=", ".join("?" * len(types)))
    grouped: dict[str, list[Version]] = {}
    for type_, id_, version, updated, deleted, body in query.execute(
            conn, sql, [patient_id, *types]):
        parsed = {} if deleted else orjson.loads(bytes(body))
        grouped.setdefault(f"{type_}/{id_}", []).append(
            Version(type_, id_, version, updated, bool(deleted), parsed))
    return grouped


def patient_deliveries(conn: Queryable, patient_id: str) -> list[Delivery]:
    """Delivered and failed notifications of events about the patient, oldest first."""
    out = []
    for (id_, status, delivered_at, http_status, error, attempts, endpoint, topic, sid,
         type_, rid, version, last_attempt) in query.execute(
            conn, _DELIVERIES, [f"Patient/{patient_id}"]):
        # Care-team routing keeps one delivery row per member Endpoint under the topic
        # ``.../care-team-patient`` (gateway/sync/careteam.py); others are Subscriptions.
        kind = "Endpoint" if (topic or "").endswith("/care-team-patient") else "Subscription"
        out.append(Delivery(id_, status, delivered_at if status == "delivered" else last_attempt,
                            http_status, error, attempts, endpoint, f"{kind}/{sid}",
                            f"{type_}/{rid}/_history/{version}"))
    return out


def message_times(conn: Queryable, ids: list[int]) -> dict[int, tuple[str | None, float | None]]:
    """(message type, event time) of stored inbound messages, by id."""
    if not ids:
        return {}
    rows = query.execute(conn, _MESSAGES.format(marks=", ".join("?" * len(ids))), ids)
    return {row[0]: (row[1], row[2]) for row in rows}


def current_bodies(conn: Queryable, resource_type: str,
                   ids: list[str]) -> dict[str, dict[str, Any]]:
    """Current bodies of some resources of one type (names for display), in one query."""
    if not ids:
        return {}
    unique = list(dict.fromkeys(ids))
    rows = query.execute(conn, _CURRENT.format(marks=", ".join("?" * len(unique))),
                         [resource_type, *unique, False])
    return {row[1]: orjson.loads(bytes(row[2])) for row in rows}
