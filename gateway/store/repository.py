"""The Repository: the only code that writes resources.

Every write validates the resource, assigns id / version / lastUpdated, checks that local
references resolve (referential integrity on write, as HAPI FHIR does by default), writes the
version row, rewrites the search index and appends the outbox row, all on the caller's
connection and transaction (see ``uow.UnitOfWork``). Reads return the stored JSON bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Connection

from gateway.errors import Conflict, Gone, InvalidResource, NotFound, PreconditionFailed
from gateway.fhir.dates import now_instant
from gateway.fhir.types import is_resource_type
from gateway.search.request import SearchRequest
from gateway.store import query
from gateway.store import statements as sql
from gateway.store.access import restricted, visible, visible_clause
from gateway.store.db import Database
from gateway.store.indexer import patient_of
from gateway.store.prepare import Prepared, prepare
from gateway.store.tables import INDEX_TABLES, resource_table, version_table

R, V = resource_table.c, version_table.c


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored: its JSON bytes and the columns beside them."""

    rid: int
    type: str
    id: str
    version_id: int
    last_updated: float
    deleted: bool
    body: bytes
    method: str = "PUT"

    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


class CurrentRow(NamedTuple):
    """A resource's row: where its current version is, and whether that is a deletion."""

    rid: int
    version_id: int
    deleted: bool


@dataclass(frozen=True)
class WriteResult:
    """What a write did: ``created`` a new resource, or ``changed`` an existing one."""

    resource: StoredResource
    created: bool = False
    changed: bool = True


class Repository:
    """Reads and writes resources on one connection; the caller owns the transaction."""

    def __init__(self, db: Database, connection: Connection, base_url: str = "") -> None:
        """``connection`` may also be the reader's SQLite connection (``Reader.snapshot``),
        for the search reads only (``search_page``, ``load_many``)."""
        self.db = db
        self.conn = connection
        self.base_url = base_url
        self._sql = db.statements
        self._deferred: list[tuple[str, list[tuple[str, str, str]]]] | None = None
        self._created: set[tuple[str, str]] = set()  # by this unit of work

    # -- reads ---------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """The current version; NotFound (also for what the reading client may not see,
        deleted or not), or Gone when the current version is a delete."""
        rows = self._sql.execute(self.conn, sql.READ_CURRENT,
                                 {"type": resource_type, "id": resource_id})
        if not rows:
            raise NotFound(f"{resource_type}/{resource_id} is not known.")
        rid, version_id, last_updated, deleted, body = rows[0]
        self._require_visible(rid, resource_type, resource_id)
        stored = StoredResource(rid, resource_type, resource_id, version_id, last_updated,
                                bool(deleted), bytes(body))
        if stored.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted.",
                       headers=_version_headers(stored))
        return stored

    def read_version(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        row = self.conn.execute(
            select(V.rid, V.last_updated, V.deleted, V.body, V.method)
            .where(V.type == resource_type, V.id == resource_id, V.version_id == version_id)
        ).first()
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id}/_history/{version_id} is not known.")
        stored = StoredResource(row.rid, resource_type, resource_id, version_id,
                                row.last_updated, row.deleted, row.body, row.method)
        if stored.deleted:
            raise Gone(f"Version {version_id} of {resource_type}/{resource_id} is a deletion.",
                       headers=_version_headers(stored))
        return stored

    def current_row(self, resource_type: str, resource_id: str, *,
                    lock: bool = False) -> CurrentRow | None:
        """The resource row (locked on PostgreSQL when ``lock``), None when never written."""
        text = sql.CURRENT_ROW + (" FOR UPDATE" if lock and not self.db.is_sqlite else "")
        rows = self._sql.execute(self.conn, text, {"type": resource_type, "id": resource_id})
        return CurrentRow(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    def _current_for_update(self, resource_type: str,
                            resource_id: str) -> tuple[CurrentRow, StoredResource] | None:
        """The locked row and its current version for an update. SQLite (one writer) reads
        both in one statement. PostgreSQL locks the row first and then reads the version
        it points at: a ``FOR UPDATE`` over the join would, after waiting for a concurrent
        update, re-check the new row against the old version row and find nothing,
        turning the update into a create."""
        params = {"type": resource_type, "id": resource_id}
        if self.db.is_sqlite:
            rows = self._sql.execute(self.conn, sql.CURRENT_FOR_UPDATE, params)
            if not rows:
                return None
            rid, version_id, deleted, body, last_updated = rows[0]
        else:
            current = self.current_row(resource_type, resource_id, lock=True)
            if current is None:
                return None
            rid, version_id, deleted = current
            body, last_updated = self._sql.execute(self.conn, sql.VERSION_BODY, {
                "rid": rid, "version_id": version_id})[0]
        return (CurrentRow(rid, version_id, bool(deleted)),
                StoredResource(rid, resource_type, resource_id, version_id, last_updated,
                               bool(deleted), bytes(body)))

    def ids_by_identifier(self, resource_type: str,
                          identifiers: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """Ids of the (not deleted) resources holding each (system, value) business
        identifier, in one statement; a system of '' means an identifier without one."""
        if not identifiers:
            return {}
        params: dict[str, Any] = {"type": resource_type, "deleted": False}
        for n, (system, value) in enumerate(identifiers):
            params[f"s{n}"], params[f"c{n}"] = system, value
        found: dict[tuple[str, str], list[str]] = {key: [] for key in identifiers}
        for system, code, rid in self._sql.execute(
                self.conn, sql.by_identifiers(len(identifiers)), params):
            ids = found.setdefault((system, code), [])
            if rid not in ids:
                ids.append(rid)
        return found

    def load_many(self, rids: list[int]) -> dict[int, StoredResource]:
        """Current versions of many resources by row id (search results, includes)."""
        if not rids:
            return {}
        rows = query.execute(
            self.conn,
            "SELECT r.rid, r.type, r.id, r.version_id, r.last_updated, r.deleted, v.body "
            "FROM resource r JOIN resource_version v "
            "ON v.rid = r.rid AND v.version_id = r.version_id "
            f"WHERE r.rid IN ({', '.join('?' * len(rids))})", rids)
        return {r[0]: StoredResource(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bytes(r[6]))
                for r in rows}

    def search_page(self, request: SearchRequest) -> tuple[query.Page,
                                                            dict[int, StoredResource]]:
        """One page of a search with the matches' current versions, in one query."""
        page = query.run_page(self.conn, request, bodies=True)
        return page, {rid: StoredResource(rid, t, i, v, u, False, bytes(b))
                      for rid, (t, i, v, u, b) in page.rows.items() if rid in page.rids}

    def history(self, resource_type: str | None, resource_id: str | None, *,
                since: float | None, before_key: tuple[float, int, int] | None,
                limit: int) -> list[StoredResource]:
        """Versions newest first; ``before_key`` = (last_updated, rid, version) of the last
        entry of the previous page, so pages stay stable while new versions arrive."""
        statement = select(V.rid, V.type, V.id, V.version_id, V.last_updated, V.deleted,
                           V.body, V.method)
        if resource_type:
            statement = statement.where(V.type == resource_type)
        if resource_id:
            statement = statement.where(V.id == resource_id)
        if since is not None:
            statement = statement.where(V.last_updated >= since)
        visible_versions = visible_clause(version_table.name)
        if visible_versions is not None:
            statement = statement.where(visible_versions)
        if before_key is not None:
            updated, rid, version = before_key
            statement = statement.where(or_(
                V.last_updated < updated,
                and_(V.last_updated == updated, V.rid < rid),
                and_(V.last_updated == updated, V.rid == rid, V.version_id < version)))
        statement = statement.order_by(V.last_updated.desc(), V.rid.desc(),
                                       V.version_id.desc()).limit(limit)
        return [StoredResource(r.rid, r.type, r.id, r.version_id, r.last_updated, r.deleted,
                               r.body, r.method) for r in self.conn.execute(statement)]

    def count_history(self, resource_type: str | None, resource_id: str | None,
                      since: float | None) -> int:
        statement = select(func.count()).select_from(version_table)
        if resource_type:
            statement = statement.where(V.type == resource_type)
        if resource_id:
            statement = statement.where(V.id == resource_id)
        if since is not None:
            statement = statement.where(V.last_updated >= since)
        visible_versions = visible_clause(version_table.name)
        if visible_versions is not None:
            statement = statement.where(visible_versions)
        return int(self.conn.execute(statement).scalar_one())

    # -- writes --------------------------------------------------------------------------

    def create(self, resource: dict[str, Any], *, resource_id: str | None = None,
               prepared: Prepared | None = None) -> WriteResult:
        """Store a new resource; ``resource_id`` is only for ids assigned by the caller
        (transaction placeholders); any id in the body is ignored (R4 http.html#create).
        ``prepared`` is ``prepare(resource)`` done earlier, outside the transaction."""
        ready = self._ready(resource, prepared)
        new_id = resource_id or str(uuid.uuid4())
        stored = self._insert_new(resource["resourceType"], new_id, ready, "POST")
        return WriteResult(stored, created=True)

    def update(self, resource_type: str, resource_id: str, resource: dict[str, Any], *,
               if_match: int | None = None, prepared: Prepared | None = None) -> WriteResult:
        """Replace the current version, or create with the client's id (update-as-create)."""
        ready = self._ready(resource, prepared)
        if resource.get("id") != resource_id:
            raise InvalidResource(
                f"The resource id {resource.get('id')!r} must match the id in the URL "
                f"({resource_id}).", expression=[f"{resource_type}.id"])
        found = self._current_for_update(resource_type, resource_id)
        if found is not None:
            self._require_visible(found[0].rid, resource_type, resource_id)
        if found is None:
            if if_match is not None:
                raise PreconditionFailed(
                    f"If-Match names version {if_match} of {resource_type}/{resource_id}, "
                    "which does not exist.")
            return WriteResult(self._insert_new(resource_type, resource_id, ready, "PUT"),
                               created=True)
        current, stored_now = found
        if if_match is not None and if_match != current.version_id:
            raise PreconditionFailed(
                f"{resource_type}/{resource_id} is at version {current.version_id}, "
                f"not {if_match} (If-Match).")
        if not current.deleted and _same_content(stored_now, resource):
            return WriteResult(stored_now, changed=False)
        stored = self._write_version(current.rid, resource_type, resource_id,
                                     current.version_id, ready, "PUT")
        return WriteResult(stored, created=current.deleted)

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """Soft-delete: a new, empty version marked deleted; None if there was nothing."""
        current = self.current_row(resource_type, resource_id, lock=True)
        if current is not None:
            self._require_visible(current.rid, resource_type, resource_id)
        if current is None or current.deleted:
            return None
        self._check_not_referenced(current.rid, resource_type, resource_id)
        epoch, _ = now_instant()
        version = current.version_id + 1
        patient = self._patient_of_row(current.rid)
        self._bump(current.rid, current.version_id, version, epoch, deleted=True, patient=None)
        self.conn.execute(insert(version_table).values(
            rid=current.rid, version_id=version, type=resource_type, id=resource_id,
            last_updated=epoch, method="DELETE", deleted=True, body=b"", patient=patient))
        self._clear_index(current.rid)
        self._append_outbox(current.rid, resource_type, resource_id, version, "delete",
                            patient, epoch)
        return StoredResource(current.rid, resource_type, resource_id, version, epoch, True,
                              b"", "DELETE")

    # -- referential integrity -----------------------------------------------------------

    def defer_reference_checks(self) -> None:
        """Check references at ``check_deferred_references`` instead of on each write, so
        a transaction's entries may refer to each other in any order."""
        self._deferred = []

    def check_deferred_references(self) -> None:
        pending, self._deferred = self._deferred or [], None
        for resource_type, references in pending:
            self._check_references(resource_type, references)

    def _ready(self, resource: dict[str, Any], prepared: Prepared | None) -> Prepared:
        """The prepared form of ``resource``: given (computed outside the transaction for
        this very dict and base) or computed now."""
        if prepared is not None and prepared.resource is resource \
                and prepared.base_url == self.base_url:
            return prepared
        return prepare(resource, self.base_url)

    def _queue_reference_checks(self, resource_type: str, ready: Prepared,
                                own: tuple[str, str]) -> None:
        references = [r for r in ready.references if (r[0], r[1]) != own]
        if not references:
            return
        self._check_references_visible(resource_type, references)
        if self._deferred is not None:
            self._deferred.append((resource_type, references))
        else:
            self._check_references(resource_type, references)

    def _require_visible(self, rid: int, resource_type: str, resource_id: str) -> None:
        """A client limited to some organizations reads and changes only what it can see:
        anything else answers 404 like an unknown id (store/access.py), deleted resources
        included."""
        if restricted() is not None and not visible(self.conn, rid, query.execute):
            raise NotFound(f"{resource_type}/{resource_id} is not known.")

    def _check_references_visible(self, resource_type: str,
                                  references: list[tuple[str, str, str]]) -> None:
        """A limited client may point only at what it can see, or at what this unit of work
        created: otherwise an Encounter at its own organization would open another
        organization's patient to it. Checked now, before this write can change who sees
        what, and answered as a reference to nothing, so existence does not leak."""
        if restricted() is None:
            return
        hidden = []
        for ref_type, ref_id, text in references:
            if (ref_type, ref_id) in self._created:
                continue
            row = self.current_row(ref_type, ref_id)
            if row is not None and not visible(self.conn, row.rid, query.execute):
                hidden.append(text)
        if hidden:
            raise _unresolved(resource_type, hidden)

    def _check_references(self, resource_type: str,
                          references: list[tuple[str, str, str]]) -> None:
        wanted: dict[str, set[str]] = {}
        for ref_type, ref_id, _ in references:
            wanted.setdefault(ref_type, set()).add(ref_id)
        pairs = [(t, i) for t, ids in wanted.items() for i in sorted(ids)]
        params: dict[str, Any] = {"deleted": False}
        for n, (ref_type, ref_id) in enumerate(pairs):
            params[f"t{n}"], params[f"i{n}"] = ref_type, ref_id
        existing = {(row[0], row[1]) for row in self._sql.execute(
            self.conn, sql.existing_any(len(pairs)), params)}
        missing = [text for ref_type, ref_id, text in references
                   if (ref_type, ref_id) not in existing]
        if missing:
            raise _unresolved(resource_type, missing)

    def _check_not_referenced(self, rid: int, resource_type: str, resource_id: str) -> None:
        """409 while another resource refers to this one (integrity on delete). AuditEvents
        do not count: they are evidence about what was accessed and outlive it."""
        ref = INDEX_TABLES["reference"].c
        referrer = self.conn.execute(
            select(R.type, R.id).join_from(INDEX_TABLES["reference"], resource_table,
                                           R.rid == ref.rid)
            .where(ref.target_type == resource_type, ref.target_id == resource_id,
                   ref.rid != rid, ref.type != "AuditEvent").limit(1)
        ).first()
        if referrer is not None:
            raise Conflict(f"{resource_type}/{resource_id} cannot be deleted: "
                           f"{referrer.type}/{referrer.id} refers to it.")

    # -- internals -----------------------------------------------------------------------

    def _insert_new(self, resource_type: str, resource_id: str, ready: Prepared,
                    method: str) -> StoredResource:
        self._queue_reference_checks(resource_type, ready, (resource_type, resource_id))
        epoch, instant = now_instant()
        body = _stamp(ready.resource, resource_id, 1, instant)
        rows = ready.rows
        patient = patient_of(resource_type, resource_id, rows)
        rid = int(self._sql.execute(self.conn, sql.INSERT_RESOURCE, {
            "type": resource_type, "id": resource_id, "version_id": 1, "last_updated": epoch,
            "deleted": False, "patient": patient})[0][0])
        self._insert_version(rid, resource_type, resource_id, 1, epoch, method, body, patient)
        self._created.add((resource_type, resource_id))
        self._write_index(rid, rows)
        self._append_outbox(rid, resource_type, resource_id, 1, "create", patient, epoch)
        return StoredResource(rid, resource_type, resource_id, 1, epoch, False, body, method)

    def _write_version(self, rid: int, resource_type: str, resource_id: str, current: int,
                       ready: Prepared, method: str) -> StoredResource:
        self._queue_reference_checks(resource_type, ready, (resource_type, resource_id))
        version = current + 1
        epoch, instant = now_instant()
        body = _stamp(ready.resource, resource_id, version, instant)
        rows = ready.rows
        patient = patient_of(resource_type, resource_id, rows)
        self._bump(rid, current, version, epoch, deleted=False, patient=patient)
        self._insert_version(rid, resource_type, resource_id, version, epoch, method, body,
                             patient)
        self._clear_index(rid)
        self._write_index(rid, rows)
        self._append_outbox(rid, resource_type, resource_id, version, "update", patient, epoch)
        return StoredResource(rid, resource_type, resource_id, version, epoch, False, body,
                              method)

    def _insert_version(self, rid: int, resource_type: str, resource_id: str, version: int,
                        epoch: float, method: str, body: bytes, patient: str | None) -> None:
        self._sql.execute(self.conn, sql.INSERT_VERSION, {
            "rid": rid, "version_id": version, "type": resource_type, "id": resource_id,
            "last_updated": epoch, "method": method, "deleted": False, "body": body,
            "patient": patient})

    def _bump(self, rid: int, current: int, version: int, epoch: float, *, deleted: bool,
              patient: str | None) -> None:
        """Move the resource row to ``version``; fails when someone else moved it first."""
        changed = self._sql.rowcount(self.conn, sql.BUMP, {
            "version_id": version, "last_updated": epoch, "deleted": deleted,
            "patient": patient, "rid": rid, "current": current})
        if changed != 1:
            raise PreconditionFailed("The resource was changed concurrently; retry with its "
                                     "current version.", status=409, code="conflict")

    def _write_index(self, rid: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        for kind, table_rows in rows.items():
            if table_rows:
                for row in table_rows:
                    row["rid"] = rid
                self._sql.execute_many(self.conn, sql.INSERT_INDEX[kind], table_rows)

    def _clear_index(self, rid: int) -> None:
        for statement in sql.CLEAR_INDEX:
            self._sql.execute(self.conn, statement, {"rid": rid})

    def _append_outbox(self, rid: int, resource_type: str, resource_id: str, version: int,
                       action: str, patient: str | None, epoch: float) -> None:
        values = {"rid": rid, "type": resource_type, "id": resource_id, "version_id": version,
                  "action": action, "patient": patient, "created_at": epoch}
        self._sql.execute(self.conn, sql.INSERT_OUTBOX, values)
        self.db.mark_outbox(self.conn)

    def _patient_of_row(self, rid: int) -> str | None:
        rows = self._sql.execute(self.conn, sql.PATIENT_OF, {"rid": rid})
        return rows[0][0] if rows else None


def _unresolved(resource_type: str, references: list[str]) -> InvalidResource:
    details = [(f"The reference {text!r} does not resolve to an existing resource "
                "(referential integrity is enforced on write).", [resource_type])
               for text in references]
    return InvalidResource(details[0][0], details=details, code="processing", status=422,
                           expression=[resource_type])


def _stamp(resource: dict[str, Any], resource_id: str, version: int, instant: str) -> bytes:
    """The body as stored: our id, meta.versionId and meta.lastUpdated, serialized once."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant
    resource["id"] = resource_id
    resource["meta"] = meta
    ordered = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    ordered.update(resource)
    return orjson.dumps(ordered)


def _same_content(stored: StoredResource, resource: dict[str, Any]) -> bool:
    """Would ``resource`` store what ``stored`` holds already (a no-op update)?"""
    return _content_key(orjson.loads(stored.body)) == _content_key(resource)


def _content_key(resource: dict[str, Any]) -> bytes:
    """The resource without server-assigned meta, for detecting no-op updates."""
    copy = dict(resource)
    meta = {k: v for k, v in (copy.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    copy["meta"] = meta or None
    copy.pop("id", None)
    return orjson.dumps(copy, option=orjson.OPT_SORT_KEYS)


def _version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": f'W/"{stored.version_id}"'}


def known_type(name: str) -> bool:
    return is_resource_type(name)
