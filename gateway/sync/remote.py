"""Resources crossing to and from other FHIR servers (partner push and pull, Endpoints of
format ``rest-write``).

Identity travels as business identifiers (R4 resource.html#identifiers): a resource without
one is given ``{system: <the gateway's identifier system>, value: "Type/id"}`` on its way out,
so the receiver's conditional update by identifier (http.html#cond-update) finds it again.
Literal references to the gateway's own resources cannot resolve on another server, so they
leave as logical references (references.html#logical: ``type`` + ``identifier``) and come back
as literal ones when the identifier names a local resource. Which remote copy belongs to
which local resource is remembered per destination (``remote_resource``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.fhir.references import iter_reference_holders, parse_reference
from gateway.store.tables import remote_resource_table

RR = remote_resource_table.c
Resource = dict[str, Any]
#: (type, id) -> that local resource's identifier to show elsewhere
IdentifierOf = Callable[[str, str], dict[str, str] | None]
#: (type, identifier) -> the local id it names, if exactly one
FindLocal = Callable[[str, dict[str, Any]], str | None]


def own_identifier(system: str, resource_type: str, resource_id: str) -> dict[str, str]:
    return {"system": system, "value": f"{resource_type}/{resource_id}"}


def business_identifier(resource: Resource) -> dict[str, str] | None:
    """The first identifier with both system and value, the one conditional writes use."""
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
            return {"system": str(identifier["system"]), "value": str(identifier["value"])}
    return None


def outbound(resource: Resource, system: str, identifier_of: IdentifierOf) -> Resource:
    """The copy written elsewhere: no server id or version, ``meta.source`` naming the
    gateway's resource, a business identifier, logical references."""
    out = copy.deepcopy(resource)
    out.pop("id", None)
    out["meta"] = {"source": f"{system}/{resource['resourceType']}/{resource['id']}"}
    if business_identifier(out) is None:
        out.setdefault("identifier", []).append(
            own_identifier(system, resource["resourceType"], resource["id"]))
    for holder in list(iter_reference_holders(out)):
        parsed = parse_reference(holder["reference"])
        if parsed is None or parsed.base is not None:
            continue
        identifier = identifier_of(parsed.type, parsed.id)
        if identifier is not None:
            del holder["reference"]
            holder.update(type=parsed.type, identifier=identifier)
    return out


def inbound(resource: Resource, system: str, find_local: FindLocal,
            remote_local: Callable[[str, str], str | None]) -> Resource:
    """A partner's resource as the gateway stores it: no partner id or meta, without the
    gateway's own identifiers, references to local resources where they can be found
    (by identifier, or by a remembered remote copy); others stay logical references."""
    out = copy.deepcopy(resource)
    out.pop("id", None)
    out.pop("meta", None)
    kept = [i for i in out.get("identifier") or [] if i.get("system") != system]
    if kept:
        out["identifier"] = kept
    else:
        out.pop("identifier", None)
    literal = list(iter_reference_holders(out))  # the partner's own, before relinking
    for holder in _logical_holders(out):
        local = find_local(holder["type"], holder["identifier"])
        if local:
            _relink(holder, f"{holder['type']}/{local}")
    for holder in literal:
        parsed = parse_reference(holder["reference"])
        if parsed is None:
            continue
        local = remote_local(parsed.type, parsed.id)
        if local:
            _relink(holder, f"{parsed.type}/{local}")
        else:  # not known here: keep what it is, not a reference that cannot resolve
            holder.pop("reference")
            holder.setdefault("type", parsed.type)
            holder.setdefault("display", f"{parsed.type}/{parsed.id} at the partner")
    return out


def own_local_id(identifier: dict[str, Any], system: str, resource_type: str) -> str | None:
    """The local id an identifier of the gateway's own system names (``Type/id``)."""
    if identifier.get("system") != system:
        return None
    kind, _, local = str(identifier.get("value", "")).partition("/")
    return local if kind == resource_type and local else None


def _logical_holders(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "reference" not in node and isinstance(node.get("type"), str) \
                and isinstance(node.get("identifier"), dict):
            found.append(node)
        for value in node.values():
            if isinstance(value, dict | list):
                found.extend(_logical_holders(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_logical_holders(item))
    return found


def _relink(holder: dict[str, Any], reference: str) -> None:
    display = holder.get("display")
    holder.clear()
    holder["reference"] = reference
    if display:
        holder["display"] = display


# -- remote copies -------------------------------------------------------------------------

def remembered(conn: Connection, sid: int, rid: int) -> tuple[str, str | None] | None:
    """(remote id, remote version) of a local resource's copy at one destination."""
    row = conn.execute(select(RR.remote_id, RR.remote_version)
                       .where(RR.sid == sid, RR.rid == rid)).first()
    return None if row is None else (row.remote_id, row.remote_version)


def remember(conn: Connection, sid: int, rid: int, resource_type: str, remote_id: str,
             remote_version: str | None, local_version: int) -> None:
    """Record that local ``local_version`` and the destination's ``remote_version`` are the
    same content (after a push, or a pull). Never moves back: an answer about an older local
    version that arrives after a newer one was recorded (pulled meanwhile, or a delivery
    sent again) is ignored, or the newer version would look unsynced and be pushed back,
    and a stale remote version would go out as If-Match. Ids and versions longer than the
    columns (FHIR allows 64 characters) are cut to fit rather than fail the transaction."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(remote_resource_table).values(
        sid=sid, rid=rid, type=resource_type, remote_id=fit(remote_id, RR.remote_id),
        remote_version=fit(remote_version, RR.remote_version), local_version=local_version,
        updated_at=time.time())
    changed = ("type", "remote_id", "remote_version", "local_version", "updated_at")
    conn.execute(statement.on_conflict_do_update(
        index_elements=[RR.sid, RR.rid],
        set_={name: statement.excluded[name] for name in changed},
        where=or_(RR.local_version.is_(None), RR.local_version <= local_version)))


def synced_version(conn: Connection, sid: int, rid: int) -> tuple[str | None, int | None]:
    """(remote version, local version) last recorded as the same content at a destination;
    (None, None) when nothing was ever exchanged."""
    row = conn.execute(select(RR.remote_version, RR.local_version)
                       .where(RR.sid == sid, RR.rid == rid)).first()
    return (None, None) if row is None else (row.remote_version, row.local_version)


def fit(value: str | None, column: Any) -> str | None:
    """A value cut to a string column's size."""
    return value if value is None else value[:column.type.length]


def in_sync(conn: Connection, sid: int, rid: int, version: int) -> bool:
    """Whether a local version is one the destination has already (it was pulled from
    there, or pushed there): pushing it would only echo it back."""
    synced = conn.execute(select(RR.local_version).where(RR.sid == sid, RR.rid == rid)
                          ).scalar()
    return synced is not None and version <= synced


def local_rid(conn: Connection, sid: int, resource_type: str, remote_id: str) -> int | None:
    """The local resource whose copy at this destination is ``Type/remote_id``."""
    return conn.execute(select(RR.rid).where(RR.sid == sid, RR.type == resource_type,
                                             RR.remote_id == remote_id)).scalar()
