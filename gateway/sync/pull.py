"""Pull from partner FHIR servers: poll each type for what changed since the last pull and
import it through the Repository (pull_import.py).

Each type is searched ``GET [base]/[type]?_lastUpdated=ge<mark>&_sort=_lastUpdated``,
following the Bundle's ``next`` links (R4 search.html#lastUpdated, http.html#paging). ``ge``
rather than ``gt`` so a change in the same instant as the mark is not skipped; a resource seen
before arrives unchanged and writes nothing. Each page is imported in one unit of work that
also moves the type's mark (``partner_pull``), so a crash repeats a page and never skips
one. An imported version carries ``meta.source`` = the partner's resource URL and is
remembered as the partner's copy (remote.py ``remember``), which keeps the router from
pushing it back to that partner (no echo). One worker at a time pulls a partner, whether
scheduled or asked for now (pull_lease.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson

from gateway.errors import GatewayError, InvalidRequest
from gateway.store.db import Database
from gateway.sync import partners
from gateway.sync.notifications import FHIR_JSON
from gateway.sync.partner_auth import AuthError, TokenCache
from gateway.sync.pull_import import Importer, read_mark
from gateway.sync.pull_lease import Lease, LeaseLost, lease_seconds, take_now

log = logging.getLogger(__name__)
PAGE_SIZE = 100


class PullError(GatewayError):
    """A partner could not be read; the pull is tried again at the next interval."""

    status = 502
    code = "transient"


class Puller:
    """Polls the pull partners of one database."""

    def __init__(self, db: Database, system: str, tokens: TokenCache, *,
                 interval: float = 60.0, timeout: float = 30.0, base_url: str = "") -> None:
        self.db, self.tokens = db, tokens
        self.interval, self.timeout = interval, timeout
        self.importer = Importer(db, system, base_url)
        self.lease_seconds = lease_seconds(timeout)

    async def pull_due(self, client: httpx.AsyncClient) -> int:
        """Pull every partner whose interval has passed and that no other worker is pulling,
        one lease at a time; the number of resources imported. Failures are logged, not
        raised."""
        imported = 0
        for partner in await asyncio.to_thread(self._pull_partners):
            lease = Lease(self.db, partner, self.lease_seconds)
            if not await asyncio.to_thread(lease.take, due_only=True):
                continue
            try:
                imported += sum((await self.pull(client, lease)).values())
            except (PullError, LeaseLost) as error:
                log.warning("pull from partner %s failed: %s", partner.name, error)
            except Exception:  # ours: logged, tried again at the next interval
                log.exception("pull from partner %s failed", partner.name)
            finally:
                await asyncio.to_thread(lease.release, self.interval)
        return imported

    async def pull(self, client: httpx.AsyncClient, lease: Lease) -> dict[str, int]:
        """Pull each of the leased partner's types; resources imported per type."""
        return {t: await self._pull_type(client, lease, t) for t in lease.partner.types}

    def _pull_partners(self) -> list[partners.Partner]:
        with self.db.engine.connect() as conn:
            return [p for p in partners.partners(conn) if p.pulls]

    async def _pull_type(self, client: httpx.AsyncClient, lease: Lease,
                         resource_type: str) -> int:
        partner = lease.partner
        mark = await asyncio.to_thread(read_mark, self.db, partner.id, resource_type)
        params: dict[str, Any] | None = {"_sort": "_lastUpdated", "_count": PAGE_SIZE}
        if mark:
            params = dict(params, _lastUpdated=f"ge{mark}")
        url: str | None = f"{partner.base_url}/{resource_type}"
        imported = 0
        while url:
            await asyncio.to_thread(lease.renew)  # covers the token fetch and the search
            bundle = await self._get(client, partner, url, params)
            params = None  # next links carry the query
            imported += await asyncio.to_thread(self.importer.import_page, lease,
                                                resource_type, bundle.get("entry"))
            url = _next_link(bundle)
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
            bundle = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise PullError(f"{url}: not a FHIR JSON Bundle") from error
        if not isinstance(bundle, dict):
            raise PullError(f"{url}: not a FHIR JSON Bundle")
        return bundle


def _next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" \
                and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _pull_partner(db: Database, name: str) -> partners.Partner:
    with db.engine.connect() as conn:
        partner = partners.by_name(conn, name)
    if not partner.pulls:
        raise InvalidRequest(f"Partner {name!r} is registered for {partner.direction} only.",
                             expression=["direction"])
    return partner


async def pull_now(db: Database, name: str, system: str, base_url: str = "",
                   timeout: float = 30.0) -> dict[str, int]:
    """Pull one partner now (``gateway partners pull``, ``POST /sync/partners/{name}/$pull``),
    under the partner's lease: 409 while another worker is pulling it."""
    partner = await asyncio.to_thread(_pull_partner, db, name)
    puller = Puller(db, system, TokenCache(), timeout=timeout, base_url=base_url)
    lease = await asyncio.to_thread(take_now, db, partner, puller.lease_seconds)
    try:
        async with httpx.AsyncClient() as client:
            return await puller.pull(client, lease)
    finally:
        await asyncio.to_thread(lease.release)
