"""Operators' HTTP API for notification delivery (``/sync``): list, inspect, send again;
and the Backport IG operations ``$status`` and ``$events`` under ``/fhir/Subscription``.

``/sync`` answers are plain JSON (the gateway's own records, not FHIR resources); errors are
OperationOutcomes like everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api.media import FHIR_JSON
from gateway.api.params import RowId
from gateway.fhir.validate import parse_json
from gateway.sync import admin, partners, pull
from gateway.sync import operations as operations_
from gateway.sync.topics import TOPICS

router = APIRouter(prefix="/sync", tags=["Sync"])


@router.get("/deliveries", summary="Notifications, newest first")
async def list_deliveries(
    request: Request,
    status: Annotated[str | None, Query(description="pending, delivered, failed or skipped")]
    = None,
    subscription: Annotated[str | None, Query(description="Subscription id")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(admin.list_deliveries, request.app.state.database,
                                   status=status, subscription=subscription, limit=count)


@router.get("/deliveries/{delivery_id}", summary="One notification with all its attempts")
async def get_delivery(request: Request, delivery_id: RowId) -> dict[str, Any]:
    return await run_in_threadpool(admin.get_delivery, request.app.state.database, delivery_id)


@router.post("/deliveries/{delivery_id}/$retry", summary="Send a notification again now")
async def retry_delivery(request: Request, delivery_id: RowId) -> dict[str, Any]:
    base = (request.app.state.settings.base_url or "").rstrip("/")
    return await run_in_threadpool(admin.retry_delivery, request.app.state.database,
                                   delivery_id, base)


# -- partner FHIR servers and write conflicts ----------------------------------------------

@router.get("/partners", summary="Partner FHIR servers (secrets not shown)")
async def list_partners(request: Request) -> list[dict[str, Any]]:
    return await run_in_threadpool(partners.list_partners, request.app.state.database)


@router.post("/partners", status_code=201, summary="Register a partner FHIR server")
async def add_partner(request: Request) -> dict[str, Any]:
    spec = partners.spec_from_json(parse_json(await request.body()))
    return await run_in_threadpool(partners.add_partner, request.app.state.database, spec)


@router.get("/partners/{name}", summary="One partner FHIR server")
async def get_partner(request: Request, name: str) -> dict[str, Any]:
    return await run_in_threadpool(partners.get_partner, request.app.state.database, name)


@router.delete("/partners/{name}", status_code=204, summary="Forget a partner FHIR server")
async def remove_partner(request: Request, name: str) -> Response:
    await run_in_threadpool(partners.remove_partner, request.app.state.database, name)
    return Response(status_code=204)


@router.post("/partners/{name}/$pull", summary="Pull a partner's changes now")
async def pull_partner(request: Request, name: str) -> dict[str, int]:
    settings = request.app.state.settings
    return await pull.pull_now(request.app.state.database, name,
                               settings.own_identifier_system,
                               (settings.base_url or "").rstrip("/"),
                               settings.delivery_timeout_seconds)


@router.get("/conflicts", summary="Refused writes (pushed or pulled), newest first")
async def list_conflicts(
    request: Request,
    partner: Annotated[str | None, Query(description="Partner name")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(partners.list_conflicts, request.app.state.database,
                                   partner=partner, limit=count)


@router.get("/pull-failures", summary="Partner resources a pull could not import")
async def list_pull_failures(
    request: Request,
    partner: Annotated[str | None, Query(description="Partner name")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(partners.list_pull_failures, request.app.state.database,
                                   partner=partner, limit=count)


# -- Backport IG operations on Subscription, under the FHIR base --------------------------

operations = APIRouter(prefix="/fhir", tags=["FHIR R4"])


def _fhir(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type=FHIR_JSON)


def _base(request: Request) -> str:
    configured = request.app.state.settings.base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/") + "/fhir"


async def _params(request: Request) -> dict[str, str]:
    """Operation parameters from the query and, for POST, a Parameters body."""
    params = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        body = parse_json(raw) if raw else {}
        for parameter in body.get("parameter", []) if isinstance(body, dict) else []:
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            if isinstance(parameter, dict) and value is not None:
                params[str(parameter.get("name"))] = str(value)
    return params


@operations.get("/Subscription/$status", summary="Status of Subscriptions (Backport IG)")
async def status_all(request: Request) -> Response:
    ids = [i for value in request.query_params.getlist("id") for i in value.split(",") if i]
    return _fhir(await run_in_threadpool(operations_.status_bundle,
                                         request.app.state.database, ids, _base(request)))


@operations.get("/Subscription/{subscription_id}/$status", operation_id="subscription_status",
                summary="Status of one Subscription (Backport IG)")
@operations.post("/Subscription/{subscription_id}/$status",
                 operation_id="subscription_status_post",
                 summary="Status of one Subscription (Backport IG)")
async def status_one(request: Request, subscription_id: str) -> Response:
    return _fhir(await run_in_threadpool(operations_.status_bundle,
                                         request.app.state.database, [subscription_id],
                                         _base(request)))


@operations.get("/Subscription/{subscription_id}/$events", operation_id="subscription_events",
                summary="Replay events of one Subscription (Backport IG)")
@operations.post("/Subscription/{subscription_id}/$events",
                 operation_id="subscription_events_post",
                 summary="Replay events of one Subscription (Backport IG)")
async def events(request: Request, subscription_id: str) -> Response:
    params = await _params(request)
    return _fhir(await run_in_threadpool(operations_.events_bundle,
                                         request.app.state.database, subscription_id, params,
                                         _base(request)))


@router.get("/topics", summary="SubscriptionTopics this server publishes")
async def topics() -> list[dict[str, Any]]:
    return [topic.definition() for topic in TOPICS.values()]
