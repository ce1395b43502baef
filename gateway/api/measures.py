"""Transition-of-care measures over HTTP: ``GET /measures`` (JSON, or CSV with
``format=csv`` or ``GET /measures.csv``) and the coordinators' page ``GET /measures/view``.

The figures come from ``gateway/timeline/measures.py``; definitions in docs/measures.md.
Bad parameters get 400 OperationOutcomes naming the parameter (``period``, ``organization``
...); the page shows the same message in place of the tables.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from gateway.api.pages import templates
from gateway.errors import GatewayError, InvalidRequest
from gateway.store.repository import Repository
from gateway.timeline.measures import KINDS, csv_rows, report
from gateway.timeline.panel import parse_panel
from gateway.timeline.period import parse_period

router = APIRouter(tags=["Measures"])
LABELS = {"ed_visits": "ED visits", "inpatient_admissions": "Inpatient admissions",
          "readmission_30d": "30-day readmission", "follow_up_7d": "Follow-up within 7 days",
          "follow_up_30d": "Follow-up within 30 days",
          "pcp_notification_hours": "Hours to PCP notification (median)"}

Period = Annotated[str | None, Query(
    description="YYYY-MM or YYYY-MM..YYYY-MM (whole months, both included; at most 36); "
                "default: the last six months including the current one")]
Organization = Annotated[str | None, Query(
    description="Organization/id: patients whose CareTeam has it as member, onBehalfOf or "
                "managingOrganization")]
Practitioner = Annotated[str | None, Query(
    description="Practitioner/id: patients whose CareTeam has the practitioner as member")]
Patient = Annotated[str | None, Query(description="Patient/id: one patient")]
Format = Annotated[str, Query(alias="format", description="json (default) or csv")]


def _compute(request: Request, period: str | None, organization: str | None,
             practitioner: str | None, patient: str | None) -> dict[str, Any]:
    """The report, read on a connection of its own (read-only: rolled back at the end)."""
    parsed_period = parse_period(period)
    panel = parse_panel(organization, practitioner, patient)
    database = request.app.state.database
    with database.engine.connect() as conn:
        return report(Repository(database, conn), parsed_period, panel)


def _csv(document: dict[str, Any]) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(csv_rows(document))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="measures.csv"'})


@router.get("/measures", summary="Transition-of-care measures for a panel and its patients")
async def measures(request: Request, period: Period = None, organization: Organization = None,
                   practitioner: Practitioner = None, patient: Patient = None,
                   output: Format = "json") -> Response:
    if output not in ("json", "csv"):
        raise InvalidRequest(f"format {output!r} is not supported; use json or csv.",
                             expression=["format"])
    document = await run_in_threadpool(_compute, request, period, organization, practitioner,
                                       patient)
    if output == "csv":
        return _csv(document)
    return Response(orjson.dumps(document), media_type="application/json")


@router.get("/measures.csv", summary="Transition-of-care measures as CSV")
async def measures_csv(request: Request, period: Period = None,
                       organization: Organization = None, practitioner: Practitioner = None,
                       patient: Patient = None) -> Response:
    return _csv(await run_in_threadpool(_compute, request, period, organization,
                                        practitioner, patient))


@router.get("/measures/view", summary="Transition-of-care measures page",
            response_class=HTMLResponse)
async def measures_page(request: Request, period: Period = None,
                        organization: Organization = None, practitioner: Practitioner = None,
                        patient: Patient = None) -> Response:
    context: dict[str, Any] = {"active": "measures", "kinds": KINDS, "labels": LABELS,
                               "query": request.url.query,
                               "form": {"period": period or "", "organization": organization
                                        or "", "practitioner": practitioner or "",
                                        "patient": patient or ""}}
    status = 200
    try:
        context["report"] = await run_in_threadpool(_compute, request, period, organization,
                                                    practitioner, patient)
    except GatewayError as error:
        context["error"] = error.message
        status = error.status
    return templates.TemplateResponse(request, "measures.html", context, status_code=status)
