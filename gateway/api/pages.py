"""The coordinator pages, server-rendered with Jinja2 at the server root.

``/`` patient search (name or identifier), ``/patients/{id}`` the patient page (timeline,
current plan, care team, follow-ups), ``/panel`` the patients needing attention now. The data
comes from gateway/timeline/overview.py; templates (autoescaped) are in ``templates/``,
styles in ``static/``. ``base.html`` is the layout other pages extend.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from gateway.api.people import signed_in
from gateway.errors import GatewayError
from gateway.fhir.dates import parse_range, to_instant
from gateway.timeline import overview

HERE = Path(__file__).parent
environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                          autoescape=select_autoescape(default=True, default_for_string=True))
templates = Jinja2Templates(env=environment)
router = APIRouter(include_in_schema=False)
static = StaticFiles(directory=HERE / "static")


def absolute(value: float | str | None) -> str:
    """"2026-11-14 16:00 UTC" (or the date alone for a date)."""
    if isinstance(value, str):
        if len(value) <= 10:
            return value
        found = parse_range(value)
        value = found[0] if found else None
    if value is None:
        return ""
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative(value: float | str | None, now: float | None = None) -> str:
    """"3 days ago", "in 2 hours", "just now"."""
    if isinstance(value, str):
        found = parse_range(value)
        value = found[0] if found else None
    if value is None:
        return ""
    seconds = (now or time.time()) - value
    ahead, seconds = seconds < 0, abs(seconds)
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count > 1 else ''}"
            return f"in {text}" if ahead else f"{text} ago"
    return "just now"


def iso(value: float | str | None) -> str:
    """A machine-readable time for ``<time datetime>``."""
    if value is None or isinstance(value, str):
        return value or ""
    return to_instant(value)


environment.filters["absolute"] = absolute
environment.filters["iso"] = iso
environment.filters["relative"] = relative
environment.globals["signed_in"] = signed_in


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


@router.get("/", response_class=HTMLResponse)
async def search(request: Request,
                 q: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    try:
        found = await run_in_threadpool(overview.find_patients, request.app.state.fhir, q)
    except GatewayError as error:
        return _render(request, "error.html", error.status, message=error.message)
    return _render(request, "index.html", q=q, patients=found, searched=bool(q.strip()))


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
async def patient(request: Request, patient_id: str) -> HTMLResponse:
    try:
        page = await run_in_threadpool(overview.patient_page, request.app.state.database,
                                       patient_id)
    except GatewayError as error:
        return _render(request, "error.html", error.status, message=error.message)
    return _render(request, "patient.html", page=page)


@router.get("/panel", response_class=HTMLResponse)
async def panel(request: Request,
                coordinator: Annotated[str | None, Query(max_length=140)] = None,
                days: Annotated[int, Query(ge=1, le=36500)] = 30) -> HTMLResponse:
    try:
        options, patients = await run_in_threadpool(
            overview.panel, request.app.state.fhir, coordinator or None, within_days=days)
    except GatewayError as error:
        return _render(request, "error.html", error.status, message=error.message)
    return _render(request, "panel.html", options=options, coordinator=coordinator or "",
                   days=days, patients=patients)
