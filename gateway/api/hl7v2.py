"""Inbound messages over HTTP: HL7 v2 at the server root (beside ``/fhir``), Da Vinci
notifications at ``/fhir/$process-message``, and the inbound message store.

``POST /hl7v2`` takes one ER7 message (``x-application/hl7-v2+er7`` or ``text/plain``) and
answers with its ACK (HTTP 200 whatever MSA-1 says, as HL7 over HTTP does; 204 when the
message's MSH-15/16 asked for no acknowledgment). Stored messages can be listed, read and
replayed after a mapping fix. This router is included before the FHIR router, so
``$process-message`` is not taken for a resource type.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from gateway.api import guards
from gateway.api.errors import outcome_response
from gateway.api.media import FHIR_JSON, check_content_type
from gateway.api.params import AfterId, RowId
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.ingest import inbox as ib
from gateway.ingest.hl7v2 import Reply, decode
from gateway.ingest.service import InboundService
from gateway.ingest.setup import build_ingest

router = APIRouter(tags=["HL7 v2"])
ER7 = "x-application/hl7-v2+er7"
_MEDIA = {ER7, "text/plain", "application/hl7-v2"}
_lock = threading.Lock()


def ingest(request: Request) -> InboundService:
    """The process's ingest service, built on first use from the app's database."""
    state = request.app.state
    with _lock:
        if getattr(state, "hl7v2", None) is None:
            state.hl7v2 = build_ingest(state.settings, state.database, state.fhir)
    return state.hl7v2


Ingest = Annotated[InboundService, Depends(ingest)]


def _ack_response(reply: Reply) -> Response:
    if reply.ack is None:
        return Response(status_code=204, headers={"X-Message-Id": str(reply.message_id)})
    return Response(reply.ack.encode("utf-8"), media_type=f"{ER7}; charset=utf-8",
                    headers={"X-Message-Id": str(reply.message_id)})


async def _body(request: Request, *, fhir: bool = False) -> bytes:
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if fhir:
        check_content_type(request)
    elif media not in _MEDIA:
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'!r} is not supported; "
                                   f"send {ER7} or text/plain.")
    settings = request.app.state.settings
    limit = settings.max_body_bytes if fhir else settings.max_hl7_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if not body.strip():
        raise InvalidRequest("The request body is empty; an HL7 v2 message was expected.")
    return body


@router.post("/hl7v2", summary="Receive one HL7 v2 message; answers its ACK",
             response_class=Response)
async def receive(request: Request, service: Ingest) -> Response:
    body = await _body(request)
    reply = await run_in_threadpool(guards.as_feed, service.hl7v2.receive, body, "http")
    return _ack_response(reply)


@router.post("/fhir/$process-message",
             summary="Receive a Da Vinci Unsolicited Notification message Bundle",
             response_class=Response, tags=["FHIR R4"])
async def process_message(request: Request, service: Ingest) -> Response:
    """FHIR R4 messaging.html#process-message with the Da Vinci Alerts notification Bundle:
    200 and an informational OperationOutcome once applied; 4xx OperationOutcome if not."""
    body = await _body(request, fhir=True)
    result = await run_in_threadpool(guards.as_feed, service.notifications.receive, body)
    return outcome_response(200, result["issue"])


@router.get("/hl7v2/messages", summary="List stored inbound messages")
async def list_messages(
    service: Ingest,
    status: Annotated[str | None, Query(description="received, processed, error, "
                                                    "rejected")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
    after: AfterId = 0,
) -> JSONResponse:
    if status is not None and status not in ib.STATUSES:
        raise InvalidRequest(f"Unknown status {status!r}; one of {', '.join(ib.STATUSES)}.",
                             expression=["status"])
    rows = await run_in_threadpool(service.inbox.list, status, count, after)
    return JSONResponse({"messages": [r.summary() for r in rows]})


@router.get("/hl7v2/messages/{message_id}", summary="One stored message, raw text included")
async def read_message(message_id: RowId, service: Ingest) -> JSONResponse:
    stored = await run_in_threadpool(service.inbox.get, message_id)
    if stored is None:
        raise NotFound(f"Inbound message {message_id} is not known.")
    return JSONResponse({**stored.summary(), "ack": stored.ack, "raw": decode(stored.raw)})


@router.post("/hl7v2/messages/$replay", summary="Replay every failed message")
async def replay_failed(service: Ingest) -> JSONResponse:
    rows = await run_in_threadpool(service.inbox.list, ib.ERROR, 100000)
    results = []
    for row in rows:
        try:
            reply = await run_in_threadpool(service.replay, row.id)
        except GatewayError as error:
            results.append({"id": row.id, "ackCode": "AE", "error": error.message})
            continue
        code = reply.code if isinstance(reply, Reply) else "AA"
        results.append({"id": row.id, "ackCode": code})
    return JSONResponse({"replayed": results})


@router.post("/hl7v2/messages/{message_id}/$replay",
             summary="Process a failed message again; answers its new ACK",
             response_class=Response)
async def replay(message_id: RowId, service: Ingest) -> Response:
    reply = await run_in_threadpool(service.replay, message_id)
    if isinstance(reply, Reply):
        return _ack_response(reply)
    return Response(json.dumps(reply).encode(), media_type=FHIR_JSON)
