"""``POST /`` with transaction and batch Bundles (http://hl7.org/fhir/R4/http.html#transaction).

A transaction runs in one unit of work: every entry succeeds or nothing is kept. Entries are
processed in the spec's order (DELETE, POST, PUT, GET), ``urn:uuid:`` fullUrls are resolved
to the ids the server assigns, and two entries that resolve to the same resource are refused
(the spec forbids it) rather than one silently overwriting the other. A batch runs each entry
in its own unit of work and reports each outcome.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed
from gateway.fhir.dates import to_instant
from gateway.fhir.references import iter_reference_holders
from gateway.fhir.types import is_resource_type
from gateway.fhir.validate import check_resource_type
from gateway.rest import results as res
from gateway.rest.interactions import FhirService, parse_version
from gateway.store.repository import Repository, StoredResource, WriteResult
from gateway.store.uow import UnitOfWork

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


@dataclass
class Entry:
    """One request entry of the Bundle, with what the server decided for it."""

    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_match: str | None = None
    if_none_exist: str | None = None
    resource_type: str = ""
    resource_id: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    response: bytes | None = None


def process(service: FhirService, base: str, bundle: Any, *,
            return_representation: bool = False) -> res.Result:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("POST to the base URL takes a Bundle of type transaction or batch.",
                             expression=["resourceType"])
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise InvalidRequest(f"Bundle.type must be transaction or batch, not {kind!r}.",
                             expression=["Bundle.type"])
    entries = [_entry(i, raw) for i, raw in enumerate(bundle.get("entry") or [])]
    if kind == "transaction":
        return _transaction(service, base, entries, return_representation)
    return _batch(service, base, entries, return_representation)


def _entry(index: int, raw: Any) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where} must be an object.", expression=[where])
    request = raw.get("request")
    if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
        raise InvalidRequest(f"{where}.request with method and url is required.",
                             expression=[f"{where}.request"])
    method = str(request["method"]).upper()
    if method not in _ORDER:
        raise InvalidRequest(f"{where}.request.method {method!r} is not supported.",
                             expression=[f"{where}.request.method"])
    resource = raw.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise InvalidRequest(f"{where}.resource is required for {method}.",
                             expression=[f"{where}.resource"])
    entry = Entry(index, method, str(request["url"]), resource, raw.get("fullUrl"),
                  request.get("ifMatch"), request.get("ifNoneExist"))
    _parse_url(entry)
    return entry


def _parse_url(entry: Entry) -> None:
    parts = urlsplit(entry.url)
    segments = [s for s in parts.path.split("/") if s]
    entry.params = parse_qsl(parts.query, keep_blank_values=True)
    where = f"Bundle.entry[{entry.index}].request.url"
    if not segments or not is_resource_type(segments[0]):
        raise InvalidRequest(f"{where}: {entry.url!r} does not start with a resource type.",
                             expression=[where])
    entry.resource_type = segments[0]
    if len(segments) > 1:
        entry.resource_id = segments[1]
    if entry.resource is not None:
        try:
            check_resource_type(entry.resource, entry.resource_type)
        except GatewayError as error:
            raise _at_entry(error, entry) from None


# -- transaction -------------------------------------------------------------------------------

def _transaction(service: FhirService, base: str, entries: list[Entry],
                 representation: bool) -> res.Result:
    with UnitOfWork(service.db, base) as uow:
        repo = uow.repository
        repo.defer_reference_checks()
        targets = _resolve_targets(service, repo, base, entries)
        _refuse_duplicates(entries, targets)
        _rewrite_references(repo, service, base, entries, targets)
        for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
            try:
                entry.response = _execute(service, repo, base, entry, targets, representation)
            except GatewayError as error:
                raise _at_entry(error, entry) from None
        try:
            uow.commit()
        except GatewayError as error:
            error.message = f"Transaction rolled back: {error.message}"
            raise
    body = res.bundle_bytes("transaction-response", [e.response or b"{}" for e in entries])
    return res.Result(200, body=body)


def _resolve_targets(service: FhirService, repo: Repository, base: str,
                     entries: list[Entry]) -> dict[int, str]:
    """Decide, before anything is written, which resource (Type/id) each entry writes."""
    targets: dict[int, str] = {}
    for entry in entries:
        try:
            target = _target_of(service, repo, base, entry)
        except GatewayError as error:
            raise _at_entry(error, entry) from None
        if target:
            targets[entry.index] = target
    return targets


def _target_of(service: FhirService, repo: Repository, base: str, entry: Entry) -> str | None:
    if entry.method == "POST":
        if entry.if_none_exist:
            params = parse_qsl(entry.if_none_exist.split("?", 1)[-1])
            found = service.conditional_match(repo, base, entry.resource_type, params,
                                               "create")
            if found:
                entry.resource_id = found
                return f"{entry.resource_type}/{found}"
        entry.resource_id = str(uuid.uuid4())
        return f"{entry.resource_type}/{entry.resource_id}"
    if entry.method == "PUT":
        if entry.resource_id is None:
            assert entry.resource is not None
            entry.resource_id = service.resolve_conditional_update(
                repo, base, entry.resource_type, entry.params, entry.resource)
        return f"{entry.resource_type}/{entry.resource_id}"
    if entry.method == "DELETE":
        if entry.resource_id is None:
            found = service.conditional_match(repo, base, entry.resource_type, entry.params,
                                               "delete")
            entry.resource_id = found
        return f"{entry.resource_type}/{entry.resource_id}" if entry.resource_id else None
    return None


def _refuse_duplicates(entries: list[Entry], targets: dict[int, str]) -> None:
    """Two entries writing one resource is an error (R4 http.html#trules). Two conditional
    entries with the same criteria name the same resource even when nothing matches yet."""
    seen: dict[str, int] = {}
    for entry in entries:
        identities = [targets.get(entry.index), _condition_key(entry)]
        for identity in filter(None, identities):
            if identity in seen and seen[identity] != entry.index:
                raise InvalidRequest(
                    f"Bundle.entry[{seen[identity]}] and Bundle.entry[{entry.index}] both "
                    f"resolve to {identity}; a transaction may not change one resource twice.",
                    expression=[f"Bundle.entry[{entry.index}]"], code="business-rule")
            seen[identity] = entry.index


def _condition_key(entry: Entry) -> str | None:
    if entry.method == "POST" and entry.if_none_exist:
        params = parse_qsl(entry.if_none_exist.split("?", 1)[-1], keep_blank_values=True)
    elif entry.method in ("PUT", "DELETE") and entry.params and "/" not in entry.url.split("?")[0]:
        params = entry.params
    else:
        return None
    return f"{entry.resource_type}?{urlencode(sorted(params))}"


def _rewrite_references(repo: Repository, service: FhirService, base: str,
                        entries: list[Entry], targets: dict[int, str]) -> None:
    """Point references at fullUrls (``urn:uuid:...`` or absolute) to the assigned ids, and
    resolve conditional references (``Patient?identifier=...``)."""
    by_full_url = {e.full_url: targets[e.index] for e in entries
                   if e.full_url and e.index in targets}
    for entry in entries:
        if entry.resource is None:
            continue
        for holder in iter_reference_holders(entry.resource):
            reference = holder["reference"]
            if reference in by_full_url:
                holder["reference"] = by_full_url[reference]
            elif "?" in reference and is_resource_type(reference.split("?", 1)[0]):
                holder["reference"] = _conditional_reference(service, repo, base, entry,
                                                             reference)
            elif reference.startswith("urn:"):
                where = f"Bundle.entry[{entry.index}].resource"
                raise InvalidRequest(f"{where}: the reference {reference!r} matches no fullUrl "
                                     "in this transaction.", expression=[where])


def _conditional_reference(service: FhirService, repo: Repository, base: str, entry: Entry,
                           reference: str) -> str:
    resource_type, _, query_text = reference.partition("?")
    found = service.conditional_match(repo, base, resource_type,
                                       parse_qsl(query_text, keep_blank_values=True),
                                       "reference")
    if found is None:
        where = f"Bundle.entry[{entry.index}].resource"
        raise InvalidRequest(f"{where}: the conditional reference {reference!r} matches no "
                             "resource.", expression=[where], code="not-found")
    return f"{resource_type}/{found}"


def _execute(service: FhirService, repo: Repository, base: str, entry: Entry,
             targets: dict[int, str], representation: bool) -> bytes:
    if entry.method == "POST":
        assert entry.resource is not None and entry.resource_id is not None
        if entry.if_none_exist and repo.current_row(entry.resource_type, entry.resource_id):
            found = repo.read(entry.resource_type, entry.resource_id)
            return _response(base, WriteResult(found, changed=False), representation)
        return _response(base, repo.create(entry.resource, resource_id=entry.resource_id),
                         representation)
    if entry.method in ("PUT", "PATCH"):
        if entry.method == "PATCH":
            raise MethodNotAllowed("PATCH is not supported in transactions.")
        assert entry.resource is not None and entry.resource_id is not None
        entry.resource["id"] = entry.resource_id
        result = repo.update(entry.resource_type, entry.resource_id, entry.resource,
                             if_match=parse_version(entry.if_match, "ifMatch"))
        return _response(base, result, representation)
    if entry.method == "DELETE":
        if entry.resource_id is not None:
            repo.delete(entry.resource_type, entry.resource_id)
        return orjson.dumps({"response": {"status": "204 No Content"}})
    return _read_entry(service, repo, base, entry)


def _read_entry(service: FhirService, repo: Repository, base: str, entry: Entry) -> bytes:
    if entry.resource_id is None:
        request = service.parse(base, entry.resource_type, entry.params)
        body = service._searchset(repo, base, request, entry.params)
        return b'{"resource":' + body + b',"response":{"status":"200 OK"}}'
    stored = repo.read(entry.resource_type, entry.resource_id)
    return _response(base, WriteResult(stored, changed=False), True, status=200)


def _response(base: str, result: WriteResult, representation: bool,
              status: int | None = None) -> bytes:
    stored: StoredResource = result.resource
    code = status or (201 if result.created else 200)
    response = {"status": _STATUS_TEXT[code],
                "location": res.version_location(base, stored),
                "etag": f'W/"{stored.version_id}"',
                "lastModified": to_instant(stored.last_updated)}
    entry = b'{"fullUrl":' + orjson.dumps(f"{base}/{stored.type}/{stored.id}")
    if representation:
        entry += b',"resource":' + stored.body
    return entry + b',"response":' + orjson.dumps(response) + b"}"


def _at_entry(error: GatewayError, entry: Entry) -> GatewayError:
    """Re-anchor an error's FHIRPath expressions at the Bundle entry it came from."""
    prefix = f"Bundle.entry[{entry.index}]"

    def anchor(expression: str) -> str:
        if expression.startswith("Bundle."):
            return expression
        head, dot, rest = expression.partition(".")
        if is_resource_type(head):
            return f"{prefix}.resource{dot}{rest}"
        return f"{prefix}.request.url" if expression.startswith("_") else f"{prefix}.{expression}"

    error.expression = [anchor(e) for e in error.expression] or [prefix]
    error.details = [(f"{prefix}: {m}", [anchor(e) for e in exprs] or [prefix])
                     for m, exprs in error.details]
    error.message = f"{prefix} ({entry.method} {entry.url}): {error.message}"
    return error


# -- batch -------------------------------------------------------------------------------------

def _batch(service: FhirService, base: str, entries: list[Entry],
           representation: bool) -> res.Result:
    responses = []
    for entry in entries:
        try:
            responses.append(_batch_entry(service, base, entry, representation))
        except GatewayError as error:
            outcome = {"resourceType": "OperationOutcome", "issue": error.issues()}
            responses.append(orjson.dumps({"response": {
                "status": f"{error.status}", "outcome": outcome}}))
    return res.Result(200, body=res.bundle_bytes("batch-response", responses))


def _batch_entry(service: FhirService, base: str, entry: Entry, representation: bool) -> bytes:
    with UnitOfWork(service.db, base) as uow:
        repo = uow.repository
        target = _target_of(service, repo, base, entry)
        if entry.method == "DELETE" and target is None and entry.resource_id is None:
            uow.commit()
            return orjson.dumps({"response": {"status": "204 No Content"}})
        if any(h["reference"].startswith("urn:")
               for h in iter_reference_holders(entry.resource or {})):
            raise InvalidRequest("urn: references cannot be resolved in a batch.")
        body = _execute(service, repo, base, entry, {}, representation)
        uow.commit()
    return body

