"""SMART Backend Services endpoints: discovery and the token endpoint.

``GET /fhir/.well-known/smart-configuration`` (SMART App Launch 2.x, conformance.html)
tells clients where the token endpoint is and what it accepts; ``POST /auth/token`` takes
``grant_type=client_credentials`` with a signed client assertion (backend-services.html)
and answers an access token, or an RFC 6749 section 5.2 error as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from gateway.api.params import small_form
from gateway.api.security import Security
from gateway.auth.audit import Access
from gateway.auth.tokens import CLIENT_ALGORITHMS, OAuthError, unverified_issuer

router = APIRouter(tags=["Authorization (SMART Backend Services)"])
_MAX_FORM = 64 * 1024
_NO_CACHE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_url(request: Request) -> str:
    """The token endpoint's URL: the ``aud`` every client assertion must name."""
    configured = request.app.state.settings.base_url
    if configured:
        root = configured.rstrip("/").removesuffix("/fhir")
        return f"{root}/auth/token"
    return str(request.base_url).rstrip("/") + "/auth/token"


def _security(request: Request) -> Security:
    return request.app.state.security


@router.get("/fhir/.well-known/smart-configuration", summary="SMART configuration")
@router.get("/.well-known/smart-configuration", include_in_schema=False)
async def smart_configuration(request: Request) -> JSONResponse:
    return JSONResponse({
        "token_endpoint": token_url(request),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ALGORITHMS,
        "scopes_supported": ["system/*.cruds", "system/*.rs", "system/*.read",
                             "system/*.write"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    })


@router.post("/auth/token", summary="Get an access token (client_credentials + JWT assertion)")
async def token(request: Request) -> Response:
    security = _security(request)
    if security.tokens is None:
        return _error(OAuthError("unsupported_grant_type",
                                 "Authorization is off on this server (GATEWAY_AUTH=off).",
                                 400))
    address = request.client.host if request.client else "unknown"
    wait = security.limiter.take(f"token:{address}")
    if wait:
        return JSONResponse({"error": "slow_down", "error_description": "Too many token "
                            "requests."}, status_code=429, headers={"Retry-After": str(wait)})
    form = await small_form(request, _MAX_FORM)
    if form is None:
        return _error(OAuthError("invalid_request", "The request body is too large."))
    try:
        issued = await run_in_threadpool(security.tokens.issue, form, token_url(request))
    except OAuthError as error:
        security.audit.record(Access(_claimed_client(form), "login", error.status,
                                     address=address, detail=error.error))
        return _error(error)
    security.audit.record(Access(issued.client.client_id, "login", 200, address=address))
    return JSONResponse(issued.body(), headers=_NO_CACHE)


def _claimed_client(form: dict[str, str]) -> str:
    try:
        return unverified_issuer(form.get("client_assertion", ""))[:128]
    except OAuthError:
        return "unknown"


def _error(error: OAuthError) -> JSONResponse:
    headers = dict(_NO_CACHE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="token"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
