"""Case-management plans and care-team rosters over HTTP (``gateway/ingest/plans.py``).

``POST /ingest/careplan`` and ``POST /ingest/careteam`` take one JSON document in the source
formats of ``mappings/schemas/`` and answer 201 (something new: the CarePlan / CareTeam was
created) or 200 (updated, or ``unchanged`` when the same document is sent again) with a
summary: the stored message id, the outcome, each resource with its version and status, and
warnings (unknown codes kept as text). Refusals are 4xx OperationOutcomes whose expression
is a JSON pointer into the submitted document. ``POST /ingest/messages/{id}/$replay``
processes a stored document again.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api import guards
from gateway.api.hl7v2 import ingest
from gateway.api.params import RowId
from gateway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.ingest.plans import CAREPLAN, CARETEAM, PlanIngest, PlanReply

router = APIRouter(prefix="/ingest", tags=["Care plans and care teams"])
_JSON = {"application/json", "application/fhir+json"}


def plan_ingest(request: Request) -> PlanIngest:
    """The plan side of the process's one inbound service (shared with HL7 v2, so replay
    and recovery see the same mappings)."""
    plans = ingest(request).plans
    assert plans is not None
    return plans


Ingest = Annotated[PlanIngest, Depends(plan_ingest)]


async def _body(request: Request) -> bytes:
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in _JSON:
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'!r} is not supported; "
                                   "send application/json.")
    limit = request.app.state.settings.max_body_bytes
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if not body.strip():
        raise InvalidRequest("The request body is empty; a JSON document was expected.",
                             expression=["/"])
    return body


def _answer(reply: PlanReply) -> Response:
    return Response(orjson.dumps(reply.to_json()), status_code=201 if reply.created else 200,
                    media_type="application/json",
                    headers={"X-Message-Id": str(reply.message_id)})


@router.post("/careplan", summary="Receive a case-management plan (careplan.schema.json)")
async def receive_careplan(request: Request, service: Ingest) -> Response:
    body = await _body(request)
    return _answer(await run_in_threadpool(guards.as_feed, service.receive, body, CAREPLAN))


@router.post("/careteam", summary="Receive a care-team roster (careteam.schema.json)")
async def receive_careteam(request: Request, service: Ingest) -> Response:
    body = await _body(request)
    return _answer(await run_in_threadpool(guards.as_feed, service.receive, body, CARETEAM))


@router.post("/messages/{message_id}/$replay",
             summary="Process a stored plan or roster again")
async def replay(message_id: RowId, service: Ingest) -> Response:
    return _answer(await run_in_threadpool(service.replay, message_id))
