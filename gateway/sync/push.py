"""FHIR REST writes into another server: partner push and Endpoints of format ``rest-write``.

Each changed CarePlan / CareTeam / Encounter is written with a conditional update by its
business identifier, ``PUT [base]/[type]?identifier=system|value`` (R4
http.html#cond-update), as remote.py shapes it. Once the destination's copy is known, the
write carries ``If-Match`` with the version the destination last reported (R4
http.html#concurrency): if someone changed the copy there meanwhile, the destination answers
412 (or 409), and the gateway records a *conflict* (``write_conflict``) instead of
overwriting the newer version. The id and version the destination reports (Location, ETag)
are remembered per destination (``remote_resource``) in the transaction that records the
attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from gateway.errors import GatewayError
from gateway.fhir.references import parse_reference
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import write_conflict_table
from gateway.sync import partners, remote
from gateway.sync.notifications import FHIR_JSON, Outgoing, evidence
from gateway.sync.partner_auth import AuthError, Credentials, TokenCache
from gateway.sync.queue import Job, Outcome
from gateway.sync.retry import ErrorKind
from gateway.sync.transport import exchange

CONFLICT_STATUSES = (409, 412)
WC = write_conflict_table.c


@dataclass
class Write:
    """One prepared write and what is needed to interpret its answer."""

    job: Job
    rid: int
    outgoing: Outgoing
    remote_id: str | None
    expected_version: str | None
    credentials: Credentials | None
    #: The destination has this version, or a newer one, already: nothing is sent.
    in_sync: bool = False


def prepare(db: Database, job: Job, system: str, secrets: list[str]) -> Write:
    """Shape the resource for the destination and build the request (database reads, so
    run it in a thread). A version the destination already has -- pulled from it since
    this delivery was queued, or a later version pushed or pulled -- is not sent: with the
    copy's newest version as If-Match it would overwrite newer content with older."""
    assert job.body is not None and job.resource_type and job.resource_id
    with db.engine.connect() as conn:
        repo = Repository(db, conn)
        rid = int(repo.current_row(job.resource_type, job.resource_id).rid)
        if remote.in_sync(conn, job.sid, rid, job.version_id or 0):
            return Write(job, rid, Outgoing("PUT", job.endpoint, b"", {}), None, None, None,
                         in_sync=True)
        body = remote.outbound(orjson.loads(job.body), system,
                               lambda t, i: _identifier_of(repo, system, t, i))
        known = remote.remembered(conn, job.sid, rid)
        partner = partners.by_sid(conn, job.sid)
    identifier = remote.business_identifier(body)
    assert identifier is not None
    query = urlencode({"identifier": f"{identifier['system']}|{identifier['value']}"})
    url = f"{job.endpoint.rstrip('/')}/{job.resource_type}?{query}"
    raw = orjson.dumps(body)
    headers = dict(job.headers)
    headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
    if known is not None and known[1]:
        headers["If-Match"] = f'W/"{known[1]}"'
    headers.update(evidence(job, raw, secrets))
    return Write(job, rid, Outgoing("PUT", url, raw, headers),
                 known[0] if known else None, known[1] if known else None,
                 partner.credentials if partner else None)


def _identifier_of(repo: Repository, system: str, resource_type: str,
                   resource_id: str) -> dict[str, str] | None:
    """A referenced local resource's identifier: its own business identifier, else the
    gateway's; None when it does not exist here (left as it is)."""
    try:
        stored = repo.read(resource_type, resource_id)
    except GatewayError:
        return None
    return remote.business_identifier(stored.json()) \
        or remote.own_identifier(system, resource_type, resource_id)


async def send_write(client: httpx.AsyncClient, write: Write, tokens: TokenCache,
                     timeout: float) -> Outcome:
    """Send one write; never raises. The Outcome's ``after`` remembers the destination's
    copy, or records the conflict."""
    if write.in_sync:
        return Outcome(time.time(), 0.0, write.outgoing.url, error=(
            "skipped: the destination has this version, or a newer one, already"),
            skipped=True)
    try:
        write.outgoing.headers.update(await tokens.headers(client, write.credentials, timeout))
    except AuthError as error:
        return Outcome(time.time(), 0.0, write.outgoing.url, error.status, str(error),
                       error.kind)
    outcome, response = await exchange(client, write.outgoing, timeout)
    if response is None:
        return outcome
    if response.status_code == 401:
        tokens.forget(write.credentials)
    if outcome.ok:
        outcome.after = _remember(write, response)
    elif response.status_code in CONFLICT_STATUSES:
        outcome.kind = ErrorKind.CONFLICT
        outcome.error = f"conflict: {outcome.error}"
        outcome.after = _conflict(write, response)
    return outcome


def _remember(write: Write, response: httpx.Response) -> Any:
    remote_id, version = copy_of(response, write.remote_id)

    def after(conn: Connection) -> None:
        if remote_id:
            remote.remember(conn, write.job.sid, write.rid, write.job.resource_type or "",
                            remote_id, version, write.job.version_id or 0)
    return after


def copy_of(response: httpx.Response, known_id: str | None) -> tuple[str | None, str | None]:
    """The destination's id and version of what was written: from Location
    (``.../Type/id/_history/n``), ETag (``W/"n"``), or the returned resource."""
    remote_id, version = known_id, None
    location = parse_reference(response.headers.get("Location", "")
                               or response.headers.get("Content-Location", ""))
    if location is not None:
        remote_id, version = location.id, location.version
    etag = response.headers.get("ETag", "")
    if etag:
        version = etag.removeprefix("W/").strip('"')
    if remote_id is None or version is None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("id"):
            remote_id = remote_id or str(body["id"])
            version = version or (body.get("meta") or {}).get("versionId")
    return remote_id, version


def _conflict(write: Write, response: httpx.Response) -> Any:
    job = write.job

    def after(conn: Connection) -> None:
        conn.execute(insert(write_conflict_table).values(
            sid=job.sid, delivery_id=job.delivery_id,
            destination=remote.fit(write.outgoing.url, WC.destination),
            type=job.resource_type, resource_id=job.resource_id, version_id=job.version_id,
            remote_id=remote.fit(write.remote_id, WC.remote_id),
            expected_version=remote.fit(write.expected_version, WC.expected_version),
            http_status=response.status_code, detail=response.text[:2000],
            created_at=time.time(), direction="push"))
    return after
