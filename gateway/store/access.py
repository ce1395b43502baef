"""Who may see what, compiled into SQL: the reading client's access for this request.

The API sets ``current_access`` for a request made by a client that may not see everything;
search (``store/query.py``), includes and reads then add ``visible_sql`` to their SQL, so
counts and paging stay right and a resource outside the client's reach is simply not there
(404, absent from searches), which does not reveal that it exists.

A client acting for organizations sees a patient when one of the patient's CareTeams has one
of them as a participant (``CareTeam.participant.member``) or one of the patient's Encounters
was at one of them (``Encounter.serviceProvider``); it sees every resource that belongs to
such a patient (``resource.patient``, the patient compartment link the indexer records) and
every resource that belongs to no patient (organizations, practitioners, locations...),
except other clients' Subscriptions and the audit log (``ADMIN_ONLY_TYPES``), which only
administrators read, also not through ``_include`` / ``_revinclude``.

Versions are judged by the patient each version belonged to (``resource_version.patient``),
so a resource moved from another organization's patient to one the client sees does not
show its earlier versions through vread or history.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text

Sql = tuple[str, list[Any]]

ADMIN_ONLY_TYPES = frozenset({"AuditEvent"})


@dataclass(frozen=True)
class Access:
    """What one request's client may read: resource types (None: all) and the
    organizations whose patients it may see (None: every patient)."""

    readable_types: frozenset[str] | None = None
    organizations: tuple[str, ...] | None = None
    owner: tuple[str, str] | None = None  # (tag system, code) marking its Subscriptions
    hidden_types: frozenset[str] = frozenset()  # never visible, not even through includes

    @property
    def unrestricted(self) -> bool:
        return self.readable_types is None and self.organizations is None \
            and self.owner is None and not self.hidden_types


current_access: ContextVar[Access | None] = ContextVar("gateway_access", default=None)


@contextmanager
def access_as(access: Access | None) -> Iterator[None]:
    """Run the enclosed queries with ``access`` (e.g. a Subscription owner's, when the
    router matches a change against its criteria)."""
    token = current_access.set(access)
    try:
        yield
    finally:
        current_access.reset(token)


def organization_id(value: str) -> str:
    """``Organization/x`` or ``x`` as the bare id the access rule compares."""
    return value.removeprefix("Organization/")


def restricted() -> Access | None:
    """The current request's access when it limits anything, else None."""
    access = current_access.get()
    return None if access is None or access.unrestricted else access


def visible_sql(alias: str, *, types: bool = False) -> Sql | None:
    """A condition on a ``resource`` row (as ``alias``) that holds when the row is visible
    (with ``types``: also of a type the client may read, for includes); None when
    everything is."""
    access = restricted()
    if access is None:
        return None
    conditions: list[Sql] = []
    if types and access.readable_types is not None:
        readable = sorted(access.readable_types) or [""]
        conditions.append((f"{alias}.type IN ({', '.join('?' for _ in readable)})", readable))
    if access.hidden_types:
        hidden = sorted(access.hidden_types)
        conditions.append((f"{alias}.type NOT IN ({', '.join('?' for _ in hidden)})", hidden))
    if access.organizations is not None:
        conditions.append(_patient_condition(alias, access.organizations))
    if access.owner is not None:
        conditions.append(_owner_condition(alias, access.owner))
    if not conditions:
        return None
    text = " AND ".join(f"({c[0]})" for c in conditions)
    return text, [p for c in conditions for p in c[1]]


def _patient_condition(alias: str, organizations: tuple[str, ...]) -> Sql:
    orgs = list(organizations) or [""]
    marks = ", ".join("?" for _ in orgs)
    links = (f"SELECT pv.patient FROM resource pv WHERE pv.deleted = ? AND pv.patient IS NOT "
             f"NULL AND pv.rid IN (SELECT m.rid FROM idx_reference m WHERE "
             f"m.target_type = ? AND m.target_id IN ({marks}) AND ((m.type = ? AND m.param = ?)"
             f" OR (m.type = ? AND m.param = ?)))")
    params = [False, "Organization", *orgs, "CareTeam", "participant", "Encounter",
              "service-provider"]
    return f"{alias}.patient IS NULL OR {alias}.patient IN ({links})", params


def _owner_condition(alias: str, owner: tuple[str, str]) -> Sql:
    """Subscriptions are seen only by the client that made them (their ``_tag``)."""
    return (f"{alias}.type <> ? OR EXISTS (SELECT 1 FROM idx_token o WHERE o.rid = {alias}.rid "
            f"AND o.type = ? AND o.param = ? AND o.system = ? AND o.code = ?)",
            ["Subscription", "Subscription", "_tag", *owner])


def visible_clause(table: str) -> TextClause | None:
    """``visible_sql`` for a SQLAlchemy statement over ``table`` (e.g. the version history)."""
    condition = visible_sql(table)
    if condition is None:
        return None
    numbers = iter(range(len(condition[1])))
    sql = re.sub(r"\?", lambda _: f":visible_{next(numbers)}", condition[0])
    return text(sql).bindparams(**{f"visible_{i}": value
                                   for i, value in enumerate(condition[1])})


def visible_version(conn: Any, rid: int, version_id: int, execute: Any) -> bool:
    """Whether version ``version_id`` of row ``rid`` is visible: judged by the patient it
    belonged to then (``resource_version.patient``)."""
    condition = visible_sql("v")
    if condition is None:
        return True
    rows = execute(conn, "SELECT v.rid FROM resource_version v WHERE v.rid = ? AND "
                         f"v.version_id = ? AND {condition[0]}",
                   [rid, version_id, *condition[1]])
    return bool(rows)


def visible(conn: Any, rid: int, execute: Any) -> bool:
    """Whether the resource row ``rid`` is visible under the current access."""
    condition = visible_sql("r")
    if condition is None:
        return True
    rows = execute(conn, f"SELECT r.rid FROM resource r WHERE r.rid = ? AND {condition[0]}",
                   [rid, *condition[1]])
    return bool(rows)
