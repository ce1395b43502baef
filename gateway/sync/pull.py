"""Pull from partner FHIR servers: poll each type for what changed since the last pull and
import it through the Repository.

Each type is searched ``GET [base]/[type]?_lastUpdated=ge<mark>&_sort=_lastUpdated``,
following the Bundle's ``next`` links (R4 search.html#lastUpdated, http.html#paging). ``ge``
rather than ``gt`` so a change in the same instant as the mark is not skipped; a resource seen
before arrives unchanged and writes nothing. Each page is imported in one unit of work that
also moves the type's mark (``partner_pull``), so a crash repeats a page and never skips
one. An imported version carries ``meta.source`` = the partner's resource URL and is
remembered as the partner's copy (remote.py ``remember``); either keeps the router from
pushing it back to that partner (no echo). Identity: the gateway's own
identifier (what push gave it), a remembered remote copy, or a business identifier
(remote.py). One worker at a time pulls a partner (a lease on its row).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.errors import GatewayError, InvalidRequest
from gateway.search.request import parse_search
from gateway.store import query
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import partner_pull_table, partner_table, resource_table
from gateway.store.uow import UnitOfWork
from gateway.sync import partners, remote
from gateway.sync.notifications import FHIR_JSON
from gateway.sync.partner_auth import AuthError, TokenCache

log = logging.getLogger(__name__)
PP = partner_pull_table.c
PAGE_SIZE = 100


class PullError(GatewayError):
    """A partner could not be read; the pull is tried again at the next interval."""

    status = 502
    code = "transient"


class Puller:
    """Polls the pull partners of one database."""

    def __init__(self, db: Database, system: str, tokens: TokenCache, *,
                 interval: float = 60.0, timeout: float = 30.0, base_url: str = "") -> None:
        self.db, self.system, self.tokens = db, system, tokens
        self.interval, self.timeout, self.base_url = interval, timeout, base_url

    async def pull_due(self, client: httpx.AsyncClient) -> int:
        """Pull every partner whose interval has passed (and no other worker is pulling);
        the number of resources imported. Failures are logged, not raised."""
        imported = 0
        for partner in await asyncio.to_thread(self._claim_due):
            try:
                imported += sum((await self.pull(client, partner)).values())
            except PullError as error:
                log.warning("pull from partner %s failed: %s", partner.name, error)
            except Exception:  # ours: logged, tried again at the next interval
                log.exception("pull from partner %s failed", partner.name)
        return imported

    async def pull(self, client: httpx.AsyncClient, partner: partners.Partner
                   ) -> dict[str, int]:
        """Pull each of the partner's types; resources imported per type."""
        return {t: await self._pull_type(client, partner, t) for t in partner.types}

    def _claim_due(self) -> list[partners.Partner]:
        now = time.time()
        claimed = []
        with self.db.engine.connect() as conn:
            due = [p for p in partners.partners(conn) if p.pulls]
        for partner in due:
            with self.db.write() as conn:
                taken = conn.execute(update(partner_table).where(
                    partner_table.c.id == partner.id,
                    partner_table.c.pull_claimed_until <= now)
                    .values(pull_claimed_until=now + self.interval)).rowcount
            if taken:
                claimed.append(partner)
        return claimed

    async def _pull_type(self, client: httpx.AsyncClient, partner: partners.Partner,
                         resource_type: str) -> int:
        mark = await asyncio.to_thread(self._mark, partner.id, resource_type)
        params: dict[str, Any] | None = {"_sort": "_lastUpdated", "_count": PAGE_SIZE}
        if mark:
            params = dict(params, _lastUpdated=f"ge{mark}")
        url: str | None = f"{partner.base_url}/{resource_type}"
        imported = 0
        while url:
            bundle = await self._get(client, partner, url, params)
            params = None  # next links carry the query
            resources = [e["resource"] for e in bundle.get("entry") or []
                         if (e.get("search") or {}).get("mode", "match") == "match"
                         and (e.get("resource") or {}).get("resourceType") == resource_type]
            imported += await asyncio.to_thread(self._import_page, partner, resource_type,
                                                resources)
            url = next((link.get("url") for link in bundle.get("link") or []
                        if link.get("relation") == "next"), None)
            if url and not url.startswith(partner.base_url.rstrip("/") + "/"):
                # The partner's credentials go with every page: only to the partner.
                raise PullError(f"the next link {url!r} leaves the partner's base URL")
        return imported

    async def _get(self, client: httpx.AsyncClient, partner: partners.Partner, url: str,
                   params: dict[str, Any] | None) -> dict[str, Any]:
        try:
            headers = {"Accept": FHIR_JSON}
            headers.update(await self.tokens.headers(client, partner.credentials,
                                                     self.timeout))
            response = await client.get(url, params=params, headers=headers,
                                        timeout=self.timeout)
        except (httpx.HTTPError, AuthError) as error:
            raise PullError(f"{url}: {type(error).__name__}: {error}") from error
        if response.status_code == 401:
            self.tokens.forget(partner.credentials)
        if response.status_code != 200:
            raise PullError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return dict(orjson.loads(response.content))
        except (orjson.JSONDecodeError, TypeError, ValueError) as error:
            raise PullError(f"{url}: not a FHIR JSON Bundle") from error

    def _mark(self, partner_id: int, resource_type: str) -> str | None:
        with self.db.engine.connect() as conn:
            return conn.execute(select(PP.high_water).where(
                PP.partner_id == partner_id, PP.type == resource_type)).scalar()

    # -- importing -------------------------------------------------------------------------

    def _import_page(self, partner: partners.Partner, resource_type: str,
                     resources: list[dict[str, Any]]) -> int:
        """One page in one unit of work, with the type's new mark."""
        if not resources:
            return 0
        imported = 0
        with UnitOfWork(self.db, self.base_url) as uow:
            for resource in resources:
                imported += self._import_one(uow.repository, partner, resource)
            marks = [str((r.get("meta") or {}).get("lastUpdated") or "") for r in resources]
            _set_mark(uow.repository.conn, partner.id, resource_type, max(marks))
            uow.commit()
        return imported

    def _import_one(self, repo: Repository, partner: partners.Partner,
                    resource: dict[str, Any]) -> int:
        """Import one resource (1) or find it unchanged (0). A resource the gateway cannot
        store is logged and passed over so it does not block the partner's other changes."""
        resource_type, remote_id = resource["resourceType"], str(resource.get("id"))
        savepoint = repo.conn.begin_nested()
        try:
            written = self._write(repo, partner, resource)
        except GatewayError as error:
            savepoint.rollback()
            log.warning("pull from %s: %s/%s not imported: %s", partner.name, resource_type,
                        remote_id, error.message)
            return 0
        savepoint.commit()
        return written

    def _write(self, repo: Repository, partner: partners.Partner,
               resource: dict[str, Any]) -> int:
        resource_type, remote_id = resource["resourceType"], str(resource.get("id"))
        conn = repo.conn
        body = remote.inbound(resource, self.system,
                              lambda t, i: self._find(repo, t, i),
                              lambda t, i: _local_id(conn, partner.sid, t, i))
        body["meta"] = {"source": f"{partner.base_url}/{resource_type}/{remote_id}"}
        local_id = self._local_match(repo, partner, resource)
        current = _current(repo, resource_type, local_id) if local_id else None
        if current is not None and _same(current, body):
            row = repo.current_row(resource_type, local_id)
            rid, version, written = row.rid, row.version_id, 0
        else:
            stored = repo.update(resource_type, local_id, dict(body, id=local_id)).resource \
                if local_id else repo.create(body).resource
            rid, version, written = stored.rid, stored.version_id, 1
        remote.remember(conn, partner.sid, int(rid), resource_type, remote_id,
                        (resource.get("meta") or {}).get("versionId"), int(version))
        return written

    def _local_match(self, repo: Repository, partner: partners.Partner,
                     resource: dict[str, Any]) -> str | None:
        """The local resource a partner's resource is: by the gateway's own identifier, a
        remembered copy, or a business identifier."""
        resource_type = resource["resourceType"]
        for identifier in resource.get("identifier") or []:
            own = remote.own_local_id(identifier, self.system, resource_type)
            if own and repo.current_row(resource_type, own) is not None:
                return own
        known = _local_id(repo.conn, partner.sid, resource_type, str(resource.get("id")))
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


def _set_mark(conn: Connection, partner_id: int, resource_type: str, mark: str) -> None:
    now = time.time()
    done = conn.execute(update(partner_pull_table).where(
        PP.partner_id == partner_id, PP.type == resource_type)
        .values(high_water=mark, pulled_at=now)).rowcount
    if not done:
        conn.execute(insert(partner_pull_table).values(
            partner_id=partner_id, type=resource_type, high_water=mark, pulled_at=now))


def _pull_partner(db: Database, name: str) -> partners.Partner:
    with db.engine.connect() as conn:
        partner = partners.by_name(conn, name)
    if not partner.pulls:
        raise InvalidRequest(f"Partner {name!r} is registered for {partner.direction} only.",
                             expression=["direction"])
    return partner


async def pull_now(db: Database, name: str, system: str, base_url: str = "",
                   timeout: float = 30.0) -> dict[str, int]:
    """Pull one partner now (``gateway partners pull``, ``POST /sync/partners/{name}/$pull``)."""
    partner = await asyncio.to_thread(_pull_partner, db, name)
    puller = Puller(db, system, TokenCache(), timeout=timeout, base_url=base_url)
    async with httpx.AsyncClient() as client:
        return await puller.pull(client, partner)
