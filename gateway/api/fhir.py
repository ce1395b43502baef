"""The FHIR R4 REST API under ``/fhir`` (http://hl7.org/fhir/R4/http.html).

Handlers only translate HTTP to ``rest.FhirService`` calls and its ``Result`` back to HTTP:
status, ETag, Last-Modified, Location, and the body chosen by ``Prefer: return=``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from gateway.api import guards
from gateway.api.media import FHIR_JSON, check_content_type
from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.fhir import outcome as oo
from gateway.fhir.validate import parse_json, parse_resource
from gateway.rest import bundles
from gateway.rest.interactions import FhirService, Result, require_type
from gateway.rest.results import http_date, version_location
from gateway.sync.capability import capability_with_topics
from gateway.sync.criteria import check_bundle, check_write


class _ResourceType(Convertor[str]):
    """A resource type segment: letters, starting upper-case (so never ``metadata``,
    ``_history`` or ``$operation``); unknown names are refused by the handlers."""

    regex = "[A-Z][A-Za-z]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _LogicalId(_ResourceType):
    r"""A logical id segment (R4 datatypes.html#id: ``[A-Za-z0-9\-\.]{1,64}``; longer ones
    reach the handler, which answers 404)."""

    regex = "[A-Za-z0-9\\-\\.]+"


register_url_convertor("fhir_type", _ResourceType())
register_url_convertor("fhir_id", _LogicalId())

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


def _service(request: Request) -> FhirService:
    return request.app.state.fhir


def base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/") + "/fhir"


def _prefer(request: Request) -> dict[str, str]:
    prefer: dict[str, str] = {}
    for part in request.headers.get("prefer", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            prefer[key.lower()] = value.strip('"').lower()
    return prefer


def _strict(request: Request) -> bool:
    return _prefer(request).get("handling") == "strict"


async def _body(request: Request, *, form: bool = False) -> bytes:
    """The request body, refused with 413 beyond the configured limit."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    check_content_type(request, form=form)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def respond(request: Request, result: Result, *, write: bool = False) -> Response:
    """Turn a Result into HTTP; for writes, ``Prefer: return=`` picks the body."""
    headers = dict(result.headers)
    stored = result.resource
    if stored is not None:
        headers["ETag"] = f'W/"{stored.version_id}"'
        headers["Last-Modified"] = http_date(stored.last_updated)
        if result.location:
            headers["Location"] = version_location(base_url(request), stored)
    body: bytes
    if result.body is not None:
        body = result.body if isinstance(result.body, bytes) else orjson.dumps(result.body)
    elif stored is not None:
        body = _write_body(request, result) if write else stored.body
    elif result.outcome is not None:
        body = orjson.dumps(result.outcome)
    else:
        body = b""
    return Response(body, status_code=result.status, media_type=FHIR_JSON, headers=headers)


def _write_body(request: Request, result: Result) -> bytes:
    assert result.resource is not None
    wanted = _prefer(request).get("return", "representation")
    if wanted == "minimal":
        return b""
    if wanted == "operationoutcome":
        verb = "Created" if result.status == 201 else "Updated"
        return orjson.dumps(oo.information(
            f"{verb} {result.resource.type}/{result.resource.id} "
            f"version {result.resource.version_id}."))
    return result.resource.body


async def _call(function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    return await run_in_threadpool(function, *args, **kwargs)


# -- routes: the hot ones (read, search, create) first, since routes match in order.
# They take only the Request and read their path segments from it: FastAPI's per-parameter
# resolution costs more than the rest of a read. The parameters are declared for the
# OpenAPI document instead.

def _documented(*names: str) -> dict[str, Any]:
    descriptions = {"resource_type": "A FHIR R4 resource type, e.g. CarePlan",
                    "resource_id": "The logical id of the resource"}
    return {"parameters": [{"name": name, "in": "path", "required": True,
                            "description": descriptions[name], "schema": {"type": "string"}}
                           for name in names]}


@router.get("/{resource_type:fhir_type}/{resource_id:fhir_id}", summary="Read",
            openapi_extra=_documented("resource_type", "resource_id"))
async def read(request: Request) -> Response:
    path = request.path_params
    result = _service(request).read(path["resource_type"], path["resource_id"])
    return respond(request, result)


@router.get("/{resource_type:fhir_type}", summary="Search",
            openapi_extra=_documented("resource_type"))
async def search(request: Request) -> Response:
    resource_type = request.path_params["resource_type"]
    params = request.query_params.multi_items()
    service = _service(request)
    call = partial(service.search, base_url(request), resource_type, params,
                   strict=_strict(request))
    # On SQLite a search is a few hundred microseconds of CPU under the GIL either way;
    # handing it to a thread only adds the hop and contention. PostgreSQL waits on the
    # network, so there it runs in the thread pool.
    result = call() if service.db.is_sqlite else await run_in_threadpool(call)
    return respond(request, result)


@router.post("/{resource_type:fhir_type}",
             summary="Create (If-None-Exist for conditional create)",
             openapi_extra=_documented("resource_type"))
async def create(request: Request) -> Response:
    resource_type = request.path_params["resource_type"]
    require_type(resource_type)
    base = base_url(request)
    prepared = await request.app.state.preparer.prepare(await _body(request), resource_type,
                                                         base)
    check_write(resource_type, prepared.resource, creating=True, base_url=base)  # sync
    stamped = guards.check_resource(resource_type, prepared.resource, creating=True, base=base)
    result = await asyncio.wrap_future(_service(request).submit_create(
        base, resource_type, prepared.resource,
        if_none_exist=request.headers.get("if-none-exist"),
        prepared=None if stamped else prepared))
    return respond(request, result, write=True)


@router.get("/metadata", summary="CapabilityStatement of this server")
async def metadata(request: Request) -> Response:
    return Response(capability_with_topics(base_url(request)), media_type=FHIR_JSON)  # sync


@router.get("/_history", summary="History of all resources")
async def system_history(request: Request) -> Response:
    params = request.query_params.multi_items()
    result = await _call(_service(request).history, base_url(request), None, None, params)
    return respond(request, result)


@router.post("", summary="Process a transaction or batch Bundle")
@router.post("/", include_in_schema=False)
async def transaction(request: Request) -> Response:
    bundle = parse_json(await _body(request))
    check_bundle(bundle, base_url(request))  # sync: refuse Subscriptions it cannot honour
    guards.check_bundle(bundle, base_url(request))  # auth: each entry
    representation = _prefer(request).get("return") == "representation"
    result = await _call(bundles.process, _service(request), base_url(request), bundle,
                         return_representation=representation)
    guards.note_entries(request.scope, bundle, result.body)
    return respond(request, result)


@router.get("/{resource_type:fhir_type}/_history", summary="History of one resource type")
async def type_history(request: Request, resource_type: str) -> Response:
    params = request.query_params.multi_items()
    result = await _call(_service(request).history, base_url(request), resource_type, None,
                         params)
    return respond(request, result)


@router.post("/{resource_type:fhir_type}/_search", summary="Search with form-encoded parameters")
async def search_post(request: Request, resource_type: str) -> Response:
    raw = await _body(request, form=True)
    params = request.query_params.multi_items()
    params += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    result = await _call(_service(request).search, base_url(request), resource_type, params,
                         strict=_strict(request))
    return respond(request, result)


@router.put("/{resource_type:fhir_type}", summary="Conditional update")
async def conditional_update(request: Request, resource_type: str) -> Response:
    resource = parse_resource(await _body(request))
    check_write(resource_type, resource, creating=False, base_url=base_url(request))  # sync
    guards.check_resource(resource_type, resource, creating=False, base=base_url(request))
    params = request.query_params.multi_items()
    if not params:
        raise InvalidRequest("PUT on a type needs search parameters (conditional update) "
                             "or an id in the URL.")
    result = await _call(_service(request).conditional_update, base_url(request),
                         resource_type, params, resource,
                         if_match=request.headers.get("if-match"))
    return respond(request, result, write=True)


@router.delete("/{resource_type:fhir_type}", summary="Conditional delete")
async def conditional_delete(request: Request, resource_type: str) -> Response:
    params = request.query_params.multi_items()
    result = await _call(_service(request).conditional_delete, base_url(request),
                         resource_type, params)
    return respond(request, result)


@router.get("/{resource_type:fhir_type}/{resource_id:fhir_id}/_history",
            summary="History of one resource")
async def instance_history(request: Request, resource_type: str, resource_id: str) -> Response:
    params = request.query_params.multi_items()
    result = await _call(_service(request).history, base_url(request), resource_type,
                         resource_id, params)
    return respond(request, result)


@router.get("/{resource_type:fhir_type}/{resource_id:fhir_id}/_history/{version_id}",
            summary="Read a version")
async def vread(request: Request, resource_type: str, resource_id: str,
                version_id: str) -> Response:
    result = _service(request).vread(resource_type, resource_id, version_id)
    return respond(request, result)


@router.put("/{resource_type:fhir_type}/{resource_id:fhir_id}",
            summary="Update (or create with this id)")
async def update(request: Request, resource_type: str, resource_id: str) -> Response:
    resource = parse_resource(await _body(request))
    check_write(resource_type, resource, creating=False, base_url=base_url(request))  # sync
    guards.check_resource(resource_type, resource, creating=False, base=base_url(request))
    result = await _call(_service(request).update, base_url(request), resource_type,
                         resource_id, resource, if_match=request.headers.get("if-match"))
    return respond(request, result, write=True)


@router.delete("/{resource_type:fhir_type}/{resource_id:fhir_id}", summary="Delete")
async def delete(request: Request, resource_type: str, resource_id: str) -> Response:
    result = await _call(_service(request).delete, base_url(request), resource_type,
                         resource_id)
    return respond(request, result)
