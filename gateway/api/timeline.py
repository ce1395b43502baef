"""``GET /patients/{id}/timeline``: the patient's timeline as JSON (gateway/timeline)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.timeline.service import MAX_LIMIT, patient_timeline

router = APIRouter(tags=["Timeline"])


class TimelineEntry(BaseModel):
    """One thing that happened to the patient."""

    time: str = Field(description="When it happened (FHIR instant, UTC)")
    kind: str = Field(description="encounter.arrived, encounter.admitted, "
                                  "encounter.transferred, "
                                  "encounter.discharged, encounter.visit, encounter.cancelled, "
                                  "encounter.discharge-cancelled, careplan.created, "
                                  "careplan.changed, careplan.deleted, careteam.joined, "
                                  "careteam.left, task.created, task.completed, task.cancelled, "
                                  "task.failed, task.rejected, task.overdue, "
                                  "notification.delivered, notification.failed, "
                                  "conflict.out-of-order")
    summary: str = Field(description="What happened, in a sentence")
    reference: str = Field(description="The resource version it came from: Type/id/_history/n")
    recorded: str = Field(description="When the gateway recorded that version (lastUpdated)")
    tone: str = Field(description="neutral, good, warning or bad")
    details: list[str] | None = Field(None, description="What changed (care plan diffs...)")


class TimelinePage(BaseModel):
    """One page of a patient's timeline, newest first."""

    patient: str = Field(description="Patient/id")
    total: int = Field(description="Entries matching `since` (all pages)")
    entries: list[TimelineEntry]
    next: str | None = Field(description="URL of the next (older) page, if any")


@router.get("/patients/{patient_id}/timeline", response_model=TimelinePage,
            summary="The patient's timeline across all sources, newest first",
            responses={404: {"description": "Unknown patient (OperationOutcome)"},
                       400: {"description": "Bad parameter (OperationOutcome)"}})
async def timeline(
    request: Request,
    patient_id: str,
    since: Annotated[str | None, Query(description="Only entries at or after this FHIR "
                                                   "date or dateTime")] = None,
    before: Annotated[str | None, Query(description="Page cursor from `next`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Entries per page")] = 100,
) -> Response:
    page = await run_in_threadpool(patient_timeline, request.app.state.database, patient_id,
                                   since=since, before=before, limit=limit)
    body = page.json()
    if page.next_cursor:
        params = {k: v for k, v in (("since", since), ("limit", str(limit))) if v}
        body["next"] = (f"{request.url.path}?"
                        + urlencode({**params, "before": page.next_cursor}))
    return Response(orjson.dumps(body), media_type="application/json")
