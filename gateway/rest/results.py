"""What an interaction returns, and Bundle builders that splice stored bytes together.

Search and history Bundles are assembled from the stored JSON bytes of each resource, so
serving a page never parses or re-serializes the resources in it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson

from gateway.fhir.dates import now_instant, to_instant
from gateway.store.repository import StoredResource


@dataclass
class Result:
    """The outcome of one interaction: HTTP-agnostic, turned into a response by ``api``.

    ``resource`` is the stored version the interaction produced or read (its ETag,
    Last-Modified and Location derive from it); ``body`` is an explicit body (a Bundle or an
    OperationOutcome) that takes precedence over the resource.
    """

    status: int
    resource: StoredResource | None = None
    body: bytes | dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    location: bool = False  # send Location (create, update-as-create)


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def version_location(base: str, stored: StoredResource) -> str:
    return f"{base}/{stored.type}/{stored.id}/_history/{stored.version_id}"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def bundle_bytes(bundle_type: str, entries: list[bytes], *, total: int | None = None,
                 links: list[tuple[str, str]] | None = None) -> bytes:
    """A Bundle whose ``entry`` array is spliced from pre-serialized entry objects."""
    _, instant = now_instant()
    head: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                            "meta": {"lastUpdated": instant}, "type": bundle_type}
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": relation, "url": url} for relation, url in links]
    prefix = _dumps(head)
    if not entries:
        return prefix
    return prefix[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def search_entry(base: str, stored: StoredResource, mode: str, body: bytes | None = None) -> bytes:
    full_url = _dumps(f"{base}/{stored.type}/{stored.id}")
    return (b'{"fullUrl":' + full_url + b',"resource":' + (body or stored.body)
            + b',"search":{"mode":"' + mode.encode() + b'"}}')


def outcome_entry(outcome: dict[str, Any]) -> bytes:
    return (b'{"resource":' + _dumps(outcome) + b',"search":{"mode":"outcome"}}')


def history_entry(base: str, stored: StoredResource) -> bytes:
    full_url = f"{base}/{stored.type}/{stored.id}"
    if stored.deleted:
        method, url, status = "DELETE", f"{stored.type}/{stored.id}", "200 OK"
    elif stored.method == "POST" or stored.version_id == 1:
        method, url, status = "POST", stored.type, "201 Created"
    else:
        method, url, status = "PUT", f"{stored.type}/{stored.id}", "200 OK"
    response = {"status": status, "etag": f'W/"{stored.version_id}"',
                "lastModified": to_instant(stored.last_updated)}
    entry = b'{"fullUrl":' + _dumps(full_url)
    if not stored.deleted:
        entry += b',"resource":' + stored.body
    entry += (b',"request":' + _dumps({"method": method, "url": url})
              + b',"response":' + _dumps(response) + b"}")
    return entry
