"""Importing a page of a partner's changes (pull.py polls; this writes).

Each page is imported in one unit of work that also moves the type's mark and checks the
pull lease (pull_lease.py). Per resource:

- *Shape.* A partner's entry that is not a resource of the type asked for with a FHIR id,
  or whose identifier/meta are not what R4 says, is recorded in ``pull_failure`` and passed
  over; so is one the store refuses (each is written in a savepoint). One bad resource never
  stops the partner's other changes.
- *Identity.* The gateway's own identifier (what push gave it), a remembered remote copy, or
  a business identifier (remote.py).
- *Conflicts.* A partner's change to a resource edited here since it was last exchanged
  with that partner (the local version is newer than the one recorded as the partner's
  copy) is not imported: it is recorded in ``write_conflict`` (direction ``pull``) and the
  local edit stays; push then meets the same conflict from the other side (412). When the
  partner's copy is unchanged since that exchange, there is nothing to import: the local
  edit is on its way out.
- *Marks.* The type's mark is the newest ``meta.lastUpdated`` seen, compared as instants
  (partners write different zones and precisions), never moving back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.errors import GatewayError
from gateway.fhir.dates import parse_range, to_instant
from gateway.fhir.types import ID_PATTERN
from gateway.search.request import parse_search
from gateway.store import query
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import (
    partner_pull_table,
    pull_failure_table,
    resource_table,
    write_conflict_table,
)
from gateway.store.uow import UnitOfWork
from gateway.sync import partners, remote
from gateway.sync.pull_lease import Lease

log = logging.getLogger(__name__)
PP = partner_pull_table.c
PF = pull_failure_table.c
WC = write_conflict_table.c


@dataclass
class Failure:
    """A partner's entry that could not be imported, and why."""

    remote_id: str | None
    remote_version: str | None
    error: str


# -- shape --------------------------------------------------------------------------------

@dataclass
class Page:
    """A search page's matches of one type: those with a shape the import can trust, the
    failures of the others, and every match's ``meta.lastUpdated`` (for the mark)."""

    resources: list[dict[str, Any]]
    failures: list[Failure]
    stamps: list[str]


def read_page(entries: Any, resource_type: str) -> Page:
    """Sort a Bundle's entries. Includes and OperationOutcomes (search mode
    ``include``/``outcome``, other types) are not matches and are left out silently."""
    page = Page([], [], [])
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _is_match(entry):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") != resource_type:
            continue
        problem = shape_problem(resource, resource_type)
        if problem is None:
            page.resources.append(resource)  # type: ignore[arg-type]
        else:
            page.failures.append(Failure(_text(resource, "id"), _version(resource), problem))
        stamp = _text(resource.get("meta") if isinstance(resource, dict) else None,
                      "lastUpdated")
        if stamp:
            page.stamps.append(stamp)
    return page


def _is_match(entry: dict[str, Any]) -> bool:
    search = entry.get("search")
    return not isinstance(search, dict) or search.get("mode", "match") == "match"


def shape_problem(resource: Any, resource_type: str) -> str | None:
    """What makes a partner's resource unusable (None: nothing)."""
    if not isinstance(resource, dict):
        return "the entry has no resource"
    if not isinstance(resource.get("id"), str) or not ID_PATTERN.match(resource["id"]):
        return "the resource has no valid id (R4 datatypes.html#id)"
    meta = resource.get("meta", {})
    if not isinstance(meta, dict):
        return "meta is not an object"
    version = meta.get("versionId")
    if version is not None and not (isinstance(version, str) and ID_PATTERN.match(version)):
        return "meta.versionId is not a valid id"
    updated = meta.get("lastUpdated")
    if updated is not None and (not isinstance(updated, str) or parse_range(updated) is None):
        return "meta.lastUpdated is not an instant"
    identifiers = resource.get("identifier", [])
    if not isinstance(identifiers, list) or not all(isinstance(i, dict) for i in identifiers):
        return "identifier is not a list of Identifiers"
    return None


def _text(resource: Any, key: str) -> str | None:
    value = resource.get(key) if isinstance(resource, dict) else None
    return value if isinstance(value, str) else None


def _version(resource: Any) -> str | None:
    meta = resource.get("meta") if isinstance(resource, dict) else None
    return _text(meta, "versionId")


# -- marks ----------------------------------------------------------------------------------

def newest_mark(previous: str | None, stamps: list[str]) -> str | None:
    """The newest of the previous mark and a page's ``meta.lastUpdated`` values, compared as
    instants, not as text (``10:00+02:00`` is before ``09:00Z``; ``09:00:00.5Z`` is after
    ``09:00:00Z``). Kept as the partner wrote it, which its search surely accepts."""
    best, best_at = previous, _instant(previous)
    for stamp in stamps:
        at = _instant(stamp)
        if at is not None and (best_at is None or at > best_at):
            best, best_at = stamp, at
    if best is not None and best_at is not None \
            and len(best) > partner_pull_table.c.high_water.type.length:
        best = to_instant(best_at)  # milliseconds: earlier, never later, so nothing is skipped
    return best


def _instant(value: str | None) -> float | None:
    bounds = parse_range(value) if value else None
    return None if bounds is None else bounds[0]


def read_mark(db: Database, partner_id: int, resource_type: str) -> str | None:
    with db.engine.connect() as conn:
        return conn.execute(select(PP.high_water).where(
            PP.partner_id == partner_id, PP.type == resource_type)).scalar()


def _set_mark(conn: Connection, partner_id: int, resource_type: str, mark: str) -> None:
    now = time.time()
    done = conn.execute(update(partner_pull_table).where(
        PP.partner_id == partner_id, PP.type == resource_type)
        .values(high_water=mark, pulled_at=now)).rowcount
    if not done:
        conn.execute(insert(partner_pull_table).values(
            partner_id=partner_id, type=resource_type, high_water=mark, pulled_at=now))


# -- importing ------------------------------------------------------------------------------

class Importer:
    """Writes partners' pages through the Repository."""

    def __init__(self, db: Database, system: str, base_url: str = "") -> None:
        self.db, self.system, self.base_url = db, system, base_url

    def import_page(self, lease: Lease, resource_type: str, entries: Any) -> int:
        """One page in one unit of work, with the type's new mark; resources imported."""
        partner = lease.partner
        page = read_page(entries, resource_type)
        failures = page.failures
        previous = read_mark(self.db, partner.id, resource_type)
        mark = newest_mark(previous, page.stamps)
        imported = 0
        with UnitOfWork(self.db, self.base_url) as uow:
            lease.hold(uow.repository.conn)
            for resource in page.resources:
                written = self._import_one(uow.repository, partner, resource)
                if isinstance(written, Failure):
                    failures.append(written)
                else:
                    imported += written
            for failure in failures:
                _record_failure(uow.repository.conn, partner, resource_type, failure)
            if mark is not None and mark != previous:
                _set_mark(uow.repository.conn, partner.id, resource_type, mark)
            uow.commit()
        return imported

    def _import_one(self, repo: Repository, partner: partners.Partner,
                    resource: dict[str, Any]) -> int | Failure:
        """Import one resource (1), find nothing to import (0), or say why it failed; in a
        savepoint, so a failure leaves the page's other resources."""
        savepoint = repo.conn.begin_nested()
        try:
            written = self._write(repo, partner, resource)
        except Exception as error:  # the partner's data or our store: passed over, kept
            savepoint.rollback()
            message = error.message if isinstance(error, GatewayError) \
                else f"{type(error).__name__}: {error}"
            log.warning("pull from %s: %s/%s not imported: %s", partner.name,
                        resource["resourceType"], resource["id"], message)
            return Failure(resource["id"], _version(resource), message)
        savepoint.commit()
        return written

    def _write(self, repo: Repository, partner: partners.Partner,
               resource: dict[str, Any]) -> int:
        resource_type, remote_id = resource["resourceType"], resource["id"]
        conn = repo.conn
        body = remote.inbound(resource, self.system,
                              lambda t, i: self._find(repo, t, i),
                              lambda t, i: _local_id(conn, partner.sid, t, i))
        body["meta"] = {"source": f"{partner.base_url}/{resource_type}/{remote_id}"}
        local_id = self._local_match(repo, partner, resource)
        current = _current(repo, resource_type, local_id) if local_id else None
        version = _version(resource)
        if current is not None:
            row = repo.current_row(resource_type, local_id)
            if _same(current, body):
                remote.remember(conn, partner.sid, int(row.rid), resource_type, remote_id,
                                version, int(row.version_id))
                return 0
            decision = _decide(conn, partner, row, version)
            if decision == "conflict":
                _record_conflict(conn, partner, (resource_type, local_id, row.version_id),
                                 remote_id, version)
            if decision != "import":
                return 0
        stored = repo.update(resource_type, local_id, dict(body, id=local_id)).resource \
            if local_id else repo.create(body).resource
        remote.remember(conn, partner.sid, int(stored.rid), resource_type, remote_id,
                        version, int(stored.version_id))
        return 1

    def _local_match(self, repo: Repository, partner: partners.Partner,
                     resource: dict[str, Any]) -> str | None:
        """The local resource a partner's resource is: by the gateway's own identifier, a
        remembered copy, or a business identifier."""
        resource_type = resource["resourceType"]
        for identifier in resource.get("identifier") or []:
            own = remote.own_local_id(identifier, self.system, resource_type)
            if own and repo.current_row(resource_type, own) is not None:
                return own
        known = _local_id(repo.conn, partner.sid, resource_type, resource["id"])
        if known:
            return known
        for identifier in resource.get("identifier") or []:
            found = self._find(repo, resource_type, identifier)
            if found:
                return found
        return None

    def _find(self, repo: Repository, resource_type: str,
              identifier: dict[str, Any]) -> str | None:
        """The one local resource an identifier names (None for none or several)."""
        own = remote.own_local_id(identifier, self.system, resource_type)
        if own:
            return own if repo.current_row(resource_type, own) is not None else None
        if not identifier.get("value"):
            return None
        token = f"{identifier.get('system', '')}|{identifier['value']}"
        request = parse_search(resource_type, [("identifier", token)])
        request.count = 2
        rids = query.run_page(repo.conn, request).rids
        return repo.load_many(rids)[rids[0]].id if len(rids) == 1 else None


def _decide(conn: Connection, partner: partners.Partner, row: Any,
            incoming_version: str | None) -> str:
    """What a partner's content, different from the local resource's, means: ``import``
    when the local resource is unchanged since it was last exchanged with the partner;
    ``wait`` when the partner's copy is still the version last exchanged (the local edit
    is on its way out by push); else ``conflict``: both changed, and the partner's must
    not overwrite the local edit."""
    synced_remote, synced_local = remote.synced_version(conn, partner.sid, int(row.rid))
    if synced_local is not None and int(row.version_id) <= synced_local:
        return "import"
    if synced_remote is not None and synced_remote == incoming_version:
        return "wait"
    return "conflict"


def _record_conflict(conn: Connection, partner: partners.Partner,
                     local: tuple[str, str, int], remote_id: str, version: str | None) -> None:
    """A partner's change met a local edit not yet pushed (``local``: type, id, version),
    recorded once per pair of versions: a pull asks from its mark on, so it may see the
    same version again."""
    resource_type, local_id, local_version = local
    key = (WC.sid == partner.sid, WC.direction == "pull", WC.type == resource_type,
           WC.resource_id == local_id, WC.version_id == local_version,
           WC.remote_id == remote_id,
           WC.expected_version.is_(None) if version is None else WC.expected_version == version)
    if conn.execute(select(WC.id).where(*key)).first() is not None:
        return
    conn.execute(insert(write_conflict_table).values(
        sid=partner.sid, delivery_id=None, direction="pull",
        destination=remote.fit(f"{partner.base_url}/{resource_type}/{remote_id}",
                               WC.destination),
        type=resource_type, resource_id=local_id, version_id=local_version,
        remote_id=remote_id, expected_version=version, http_status=None,
        created_at=time.time(),
        detail=(f"The partner changed {resource_type}/{remote_id} (version "
                f"{version or '?'}) while local version {local_version} was not yet pushed "
                "to it: not imported. Make the two copies agree (edit either), or resolve "
                "it on the partner.")))


def _record_failure(conn: Connection, partner: partners.Partner, resource_type: str,
                    failure: Failure) -> None:
    """Keep a failure for operators: the latest one per partner resource (per error, for
    entries without an id), since a pull may see the same version again."""
    remote_id = remote.fit(failure.remote_id, PF.remote_id)
    same = (PF.remote_id == remote_id,) if remote_id \
        else (PF.remote_id.is_(None), PF.error == failure.error[:2000])
    conn.execute(delete(pull_failure_table).where(
        PF.sid == partner.sid, PF.type == resource_type, *same))
    conn.execute(insert(pull_failure_table).values(
        sid=partner.sid, type=resource_type,
        remote_id=remote.fit(failure.remote_id, PF.remote_id),
        remote_version=remote.fit(failure.remote_version, PF.remote_version),
        error=failure.error[:2000], created_at=time.time()))


def _local_id(conn: Connection, sid: int, resource_type: str, remote_id: str) -> str | None:
    rid = remote.local_rid(conn, sid, resource_type, remote_id)
    if rid is None:
        return None
    return conn.execute(select(resource_table.c.id)
                        .where(resource_table.c.rid == rid)).scalar()


def _current(repo: Repository, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    try:
        return repo.read(resource_type, resource_id).json()
    except GatewayError:  # deleted here: the partner's version brings it back
        return None


def _same(current: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Equal apart from id and meta: nothing to import."""
    def key(resource: dict[str, Any]) -> bytes:
        return orjson.dumps({k: v for k, v in resource.items() if k not in ("id", "meta")},
                            option=orjson.OPT_SORT_KEYS)
    return key(current) == key(incoming)
