"""The FHIR RESTful interactions (http://hl7.org/fhir/R4/http.html) over the Repository.

Each method takes plain values (type, id, parsed body, query pairs, header values) and returns
a ``Result``; nothing here knows about FastAPI or HTTP framing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import text

from gateway.errors import (
    Gone,
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    NotFound,
)
from gateway.fhir import outcome as oo
from gateway.fhir.dates import parse_range
from gateway.fhir.summary import select_elements, summarize
from gateway.fhir.types import is_resource_type
from gateway.fhir.validate import check_resource_type
from gateway.rest import results as res
from gateway.search.request import SearchRequest, parse_search
from gateway.store import query
from gateway.store.access import restricted, visible, visible_version
from gateway.store.db import Database
from gateway.store.prepare import Prepared
from gateway.store.repository import Repository, StoredResource, WriteResult
from gateway.store.uow import ReadSession
from gateway.store.writer import Writer


@dataclass(frozen=True)
class Limits:
    default_count: int = 50
    max_count: int = 1000
    max_include: int = 1000


def require_type(resource_type: str) -> str:
    if not is_resource_type(resource_type):
        raise NotFound(f"Unknown resource type {resource_type!r}.", code="not-supported")
    return resource_type


def parse_version(text: str | None, header: str) -> int | None:
    """A version from ``If-Match: W/"3"`` (or a bare ``3``)."""
    if text is None:
        return None
    value = text.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise InvalidRequest(f"Invalid {header} header {text!r}: expected W/\"<version>\".")
    return int(value)


class FhirService:
    """Read, write and search resources; one unit of work per write interaction."""

    def __init__(self, db: Database, limits: Limits | None = None) -> None:
        self.db = db
        self.limits = limits or Limits()
        self.writer = Writer(db)

    # -- reads -----------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Result:
        """Read the current version (R4 http.html#read). Cheap enough to run on the event
        loop: one indexed lookup on the reader's autocommit connection."""
        require_type(resource_type)
        try:
            rid, version_id, last_updated, _deleted, body = self.db.reader.current(
                resource_type, resource_id)
        except Gone as gone:
            self._check_gone_visible(gone, resource_type, resource_id)
            raise
        self.check_visible(rid, resource_type, resource_id)
        return res.Result(200, StoredResource(rid, resource_type, resource_id, version_id,
                                              last_updated, False, body))

    def vread(self, resource_type: str, resource_id: str, version: str) -> Result:
        """Read one version (R4 http.html#vread)."""
        require_type(resource_type)
        if not version.isdigit():
            raise NotFound(f"Version {version!r} of {resource_type}/{resource_id} is not known.")
        try:
            rid, last_updated, _deleted, body, method = self.db.reader.version(
                resource_type, resource_id, int(version))
        except Gone as gone:
            self._check_gone_visible(gone, resource_type, resource_id)
            raise
        self.check_visible(rid, resource_type, resource_id, int(version))
        return res.Result(200, StoredResource(rid, resource_type, resource_id, int(version),
                                              last_updated, False, body, method))

    def check_visible(self, rid: int, resource_type: str, resource_id: str,
                      version_id: int | None = None) -> None:
        """404 for a resource (and with ``version_id``, one of its versions) the requesting
        client may not see (store/access.py), so its existence does not leak (the same
        answer as for an unknown id)."""
        if restricted() is None:
            return
        with self._read_connection() as connection:
            seen = visible(connection, rid, query.execute) and (
                version_id is None
                or visible_version(connection, rid, version_id, query.execute))
        if not seen:
            raise NotFound(f"{resource_type}/{resource_id} is not known.")

    def _check_gone_visible(self, gone: Gone, resource_type: str, resource_id: str) -> None:
        """A deleted resource the client never could see is unknown to it, not gone."""
        if gone.rid is not None:
            self.check_visible(gone.rid, resource_type, resource_id)

    @contextmanager
    def _read_connection(self) -> Iterator[Any]:
        if self.db.is_sqlite:
            with self.db.reader.snapshot() as connection:
                yield connection
        else:
            with ReadSession(self.db) as repo:
                yield repo.conn

    # -- writes ----------------------------------------------------------------------------

    def create(self, base: str, resource_type: str, resource: dict[str, Any], *,
               if_none_exist: str | None = None) -> Result:
        return self.submit_create(base, resource_type, resource,
                                  if_none_exist=if_none_exist).result()

    def submit_create(self, base: str, resource_type: str, resource: dict[str, Any], *,
                      if_none_exist: str | None = None,
                      prepared: Prepared | None = None) -> Future[Result]:
        """Queue a create with the writer; the future resolves after its commit."""
        require_type(resource_type)
        check_resource_type(resource, resource_type)
        return self.writer.submit(lambda repo: self._write_result(
            self.create_in(repo, base, resource, if_none_exist, prepared)), base)

    def create_in(self, repo: Repository, base: str, resource: dict[str, Any],
                  if_none_exist: str | None, prepared: Prepared | None = None) -> WriteResult:
        """Create inside the caller's unit of work, honouring If-None-Exist."""
        if if_none_exist:
            existing = self.conditional_match(repo, base, resource["resourceType"],
                                               _query_pairs(if_none_exist), "create")
            if existing is not None:
                return WriteResult(repo.read(resource["resourceType"], existing), changed=False)
        return repo.create(resource, prepared=prepared)

    def update(self, base: str, resource_type: str, resource_id: str,
               resource: dict[str, Any], *, if_match: str | None = None) -> Result:
        require_type(resource_type)
        check_resource_type(resource, resource_type)
        version = parse_version(if_match, "If-Match")
        result = self.writer.execute(
            lambda repo: repo.update(resource_type, resource_id, resource, if_match=version),
            base)
        return self._write_result(result)

    def conditional_update(self, base: str, resource_type: str, params: list[tuple[str, str]],
                           resource: dict[str, Any], *, if_match: str | None = None) -> Result:
        require_type(resource_type)
        check_resource_type(resource, resource_type)
        version = parse_version(if_match, "If-Match")
        result = self.writer.execute(
            lambda repo: self.conditional_update_in(repo, base, resource_type, params,
                                                    resource, version), base)
        return self._write_result(result)

    def conditional_update_in(self, repo: Repository, base: str, resource_type: str,
                              params: list[tuple[str, str]], resource: dict[str, Any],
                              version: int | None = None) -> WriteResult:
        """R4 http.html#cond-update: no match creates, one match updates, several fail."""
        target = self.resolve_conditional_update(repo, base, resource_type, params, resource)
        resource["id"] = target
        return repo.update(resource_type, target, resource, if_match=version)

    def resolve_conditional_update(self, repo: Repository, base: str, resource_type: str,
                                   params: list[tuple[str, str]],
                                   resource: dict[str, Any]) -> str:
        """The id a conditional update writes to (an existing match or a new id)."""
        match = self.conditional_match(repo, base, resource_type, params, "update")
        body_id = resource.get("id")
        if match is None:
            if isinstance(body_id, str) and body_id:
                return body_id
            return str(uuid.uuid4())
        if body_id not in (None, match):
            raise InvalidResource(
                f"The conditional update matched {resource_type}/{match}, but the body has "
                f"id {body_id!r}.", expression=[f"{resource_type}.id"])
        return match

    def delete(self, base: str, resource_type: str, resource_id: str) -> Result:
        require_type(resource_type)
        def delete(repo: Repository) -> tuple[Any, StoredResource | None]:
            return (repo.current_row(resource_type, resource_id),
                    repo.delete(resource_type, resource_id))

        existed, deleted = self.writer.execute(delete, base)
        if existed is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known.")
        message = (f"Deleted {resource_type}/{resource_id}." if deleted
                   else f"{resource_type}/{resource_id} was already deleted.")
        result = res.Result(200, outcome=oo.information(message))
        if deleted:
            result.headers["ETag"] = f'W/"{deleted.version_id}"'
        return result

    def conditional_delete(self, base: str, resource_type: str,
                           params: list[tuple[str, str]]) -> Result:
        require_type(resource_type)
        def delete(repo: Repository) -> str | None:
            match = self.conditional_match(repo, base, resource_type, params, "delete")
            if match is not None:
                repo.delete(resource_type, match)
            return match

        match = self.writer.execute(delete, base)
        message = (f"Deleted {resource_type}/{match}." if match
                   else "No resource matched; nothing was deleted.")
        return res.Result(200, outcome=oo.information(message))

    def conditional_match(self, repo: Repository, base: str, resource_type: str,
                           params: list[tuple[str, str]], operation: str) -> str | None:
        """The single id matching a conditional create/update/delete, None for no match,
        412 for several (http.html#ccreate)."""
        criteria = [(k, v) for k, v in params if not k.startswith("_") or k in ("_id", "_tag")]
        if not criteria:
            raise InvalidRequest(f"A conditional {operation} needs search criteria.")
        request = parse_search(resource_type, criteria, base_url=base, strict=True)
        request.count = 2
        self.lock_condition(repo, resource_type, criteria)
        page = query.run_page(repo.conn, request)
        if len(page.rids) > 1:
            raise MultipleMatches(f"The conditional {operation} criteria "
                                  f"{urlencode(criteria)!r} match more than one "
                                  f"{resource_type}.")
        if not page.rids:
            return None
        return repo.load_many(page.rids)[page.rids[0]].id

    def lock_condition(self, repo: Repository, resource_type: str,
                        criteria: list[tuple[str, str]]) -> None:
        """Serialize conditional writes with the same criteria (PostgreSQL; SQLite already
        holds the database write lock), so two concurrent ones cannot both create."""
        if self.db.is_sqlite:
            return
        digest = hashlib.sha256(f"{resource_type}?{urlencode(sorted(criteria))}".encode())
        key = int.from_bytes(digest.digest()[:8], "big", signed=True)
        repo.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    @staticmethod
    def _write_result(result: WriteResult) -> Result:
        if result.created:
            return res.Result(201, result.resource, location=True)
        return res.Result(200, result.resource)

    # -- search ----------------------------------------------------------------------------

    def parse(self, base: str, resource_type: str, params: list[tuple[str, str]],
              strict: bool = False) -> SearchRequest:
        require_type(resource_type)
        return parse_search(resource_type, params, base_url=base,
                            default_count=self.limits.default_count,
                            max_count=self.limits.max_count, strict=strict)

    def search(self, base: str, resource_type: str, params: list[tuple[str, str]], *,
               strict: bool = False) -> Result:
        request = self.parse(base, resource_type, params, strict)
        with self.db.reader.snapshot() as connection:  # no pool checkout: a read snapshot
            repo = Repository(self.db, connection, base)
            return res.Result(200, body=self._searchset(repo, base, request, params))

    def _searchset(self, repo: Repository, base: str, request: SearchRequest,
                   params: list[tuple[str, str]]) -> bytes:
        if request.summary == "count" or request.count == 0:
            return res.bundle_bytes("searchset", [], total=query.count(repo.conn, request),
                                    links=[("self", _link(base, request, params, None))])
        page, matched = repo.search_page(request)
        total = None
        if request.total != "none":
            # A first page that holds every match already tells the total.
            complete = request.cursor is None and page.next_cursor is None
            total = len(page.rids) if complete else query.count(repo.conn, request)
        entries = self._page_entries(repo, base, request, page.rids, matched)
        links = [("self", _link(base, request, params, None))]
        if page.next_cursor:
            links.append(("next", _link(base, request, params, page.next_cursor)))
        if page.previous_cursor:
            links.append(("previous", _link(base, request, params, page.previous_cursor)))
        if request.ignored:
            entries.append(res.outcome_entry(oo.single(
                "warning", "not-supported",
                "Unknown or unsupported search parameters were ignored: "
                + ", ".join(sorted(set(request.ignored))), request.ignored)))
        return res.bundle_bytes("searchset", entries, total=total, links=links)

    def _page_entries(self, repo: Repository, base: str, request: SearchRequest,
                      rids: list[int], matched: dict[int, StoredResource]) -> list[bytes]:
        extra = self._included(repo, request, rids)
        loaded = dict(matched)
        if extra:
            loaded.update(repo.load_many(extra))
        entries = [self._entry(base, request, loaded[r], "match") for r in rids if r in loaded]
        entries += [self._entry(base, request, loaded[r], "include") for r in extra
                    if r in loaded]
        return entries

    def _included(self, repo: Repository, request: SearchRequest, rids: list[int]) -> list[int]:
        """``_include`` / ``_revinclude`` rows; ``:iterate`` ones are applied again to what
        they brought in (a few rounds at most), never returning a resource twice."""
        limit = self.limits.max_include
        seen, extra, frontier = set(rids), [], rids
        for round_number in range(4):
            includes = [i for i in request.include if round_number == 0 or i.iterate]
            revincludes = [i for i in request.revinclude if round_number == 0 or i.iterate]
            if not frontier or not (includes or revincludes):
                break
            found = query.included_rids(repo.conn, includes, frontier, limit)
            found += query.revincluded_rids(repo.conn, revincludes, frontier, limit)
            frontier = [r for r in dict.fromkeys(found) if r not in seen]
            seen.update(frontier)
            extra += frontier
            if len(extra) >= limit:
                return extra[:limit]
        return extra

    @staticmethod
    def _entry(base: str, request: SearchRequest, stored: StoredResource, mode: str) -> bytes:
        body = None
        if request.summary in ("true", "text", "data"):
            body = orjson.dumps(summarize(stored.json(), request.summary))
        elif request.elements:
            body = orjson.dumps(select_elements(stored.json(), request.elements))
        return res.search_entry(base, stored, mode, body)

    # -- history ---------------------------------------------------------------------------

    def history(self, base: str, resource_type: str | None, resource_id: str | None,
                params: list[tuple[str, str]]) -> Result:
        if resource_type:
            require_type(resource_type)
        values = dict(params)
        since = _since(values.get("_since"))
        count = _count(values.get("_count"), self.limits)
        before = _history_cursor(values.get("_cursor"))
        with ReadSession(self.db, base) as repo:
            current = repo.current_row(resource_type or "", resource_id) if resource_id \
                else None
            if resource_id and (current is None
                                or not visible(repo.conn, current.rid, query.execute)):
                raise NotFound(f"{resource_type}/{resource_id} is not known.")
            total = repo.count_history(resource_type, resource_id, since)
            versions = repo.history(resource_type, resource_id, since=since,
                                    before_key=before, limit=count + 1)
        more = len(versions) > count
        versions = versions[:count]
        path = "/".join(p for p in (base, resource_type, resource_id, "_history") if p)
        kept = [(k, v) for k, v in params if k != "_cursor"]
        links = [("self", _with_query(path, params))]
        if more and versions:
            last = versions[-1]
            cursor = f"{last.last_updated!r}:{last.rid}:{last.version_id}"
            links.append(("next", _with_query(path, [*kept, ("_cursor", cursor)])))
        entries = [res.history_entry(base, v) for v in versions]
        return res.Result(200, body=res.bundle_bytes("history", entries, total=total,
                                                     links=links))


Result = res.Result


def _query_pairs(text: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(text.split("?", 1)[-1], keep_blank_values=True)


def _link(base: str, request: SearchRequest, params: list[tuple[str, str]],
          cursor: str | None) -> str:
    pairs = request.self_params(params)
    if cursor:
        pairs = [*pairs, ("_cursor", cursor)]
    return _with_query(f"{base}/{request.resource_type}", pairs)


def _with_query(path: str, pairs: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    found = parse_range(text)
    if found is None:
        raise InvalidRequest(f"Invalid _since {text!r}: expected an instant.",
                             expression=["_since"])
    return found[0]


def _count(text: str | None, limits: Limits) -> int:
    if text is None:
        return limits.default_count
    if not text.isdigit():
        raise InvalidRequest(f"_count must be a non-negative integer, not {text!r}.",
                             expression=["_count"])
    return max(1, min(int(text), limits.max_count))


def _history_cursor(text: str | None) -> tuple[float, int, int] | None:
    if text is None:
        return None
    try:
        updated, rid, version = text.split(":")
        return float(updated), int(rid), int(version)
    except ValueError:
        raise InvalidRequest("Invalid history cursor.", expression=["_cursor"]) from None
