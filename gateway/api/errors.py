"""The one place where errors become HTTP responses: always an OperationOutcome."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.api.media import FHIR_JSON
from gateway.errors import GatewayError

log = logging.getLogger("gateway.api")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 401: "login",
               403: "forbidden", 429: "throttled"}


def outcome_response(status: int, issues: list[dict[str, object]],
                     headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": issues})
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers)


async def _gateway_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, GatewayError)
    if error.status >= 500:
        log.error("request failed: %s", error.message)
    return outcome_response(error.status, error.issues(), error.headers)


async def _http_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "processing")
    return outcome_response(error.status_code, [
        {"severity": "error", "code": code, "diagnostics": str(error.detail)}],
        dict(error.headers or {}))


async def _validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    issues: list[dict[str, object]] = []
    for item in error.errors():
        location = ".".join(str(p) for p in item.get("loc", ()))
        issues.append({"severity": "error", "code": "invalid",
                       "diagnostics": f"{location}: {item.get('msg')}",
                       "expression": [location]})
    return outcome_response(400, issues)


async def _unexpected(_request: Request, error: Exception) -> Response:
    log.exception("unexpected error", exc_info=error)
    return outcome_response(500, [{"severity": "fatal", "code": "exception",
                                   "diagnostics": "Internal error; it has been logged."}])


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
