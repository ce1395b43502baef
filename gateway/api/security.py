"""Security around every request: bearer tokens, scopes, rate limits, audit, headers.

``GATEWAY_AUTH=smart``: each request to ``/fhir``, ``/hl7v2``, ``/ingest`` or ``/sync``
(except the CapabilityStatement, SMART discovery and the token endpoint) needs a bearer
access token from ``/auth/token`` (RFC 6750: 401 with ``WWW-Authenticate`` without one),
scopes that allow the interaction (403 OperationOutcome otherwise), and stays within its
client's rate limit (429 with Retry-After). The client and its access are put in context
vars for the handlers, the search SQL (store/access.py) and the audit trail, which records
the request and its outcome when the answer has been sent.

``GATEWAY_AUTH=off`` (development and the demo): none of that, announced at start-up.
Security headers are added either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import outcome_response
from gateway.api.guards import AUDIT_ENTRIES
from gateway.api.interactions import Interaction, classify, is_protected
from gateway.api.people import USER_KEY, People, PeopleMiddleware
from gateway.auth.audit import Access, AuditTrail
from gateway.auth.principal import Principal, current_principal
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.scopes import Scopes
from gateway.auth.sessions import Signer, load_session_key
from gateway.auth.tokens import TokenService, load_signing_key
from gateway.config import Settings
from gateway.errors import (
    Forbidden,
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
)
from gateway.store.access import current_access
from gateway.store.clients import Client, ClientRegistry
from gateway.store.db import Database
from gateway.store.users import UserRegistry
from gateway.store.writer import Writer

log = logging.getLogger("gateway.security")

_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"strict-transport-security", b"max-age=31536000")]
_NO_STORE = (b"cache-control", b"no-store")
# The coordinator pages load only their own stylesheet and post forms to themselves.
_CSP = (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self' "
        b"data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_DOCS = ("/docs", "/redoc")
_THROTTLED_AUDIT = 10.0  # seconds of rate-limit refusals recorded as one AuditEvent


@dataclass
class Security:
    """The process's client registry, token service, rate limiter and audit trail."""

    settings: Settings
    registry: ClientRegistry
    tokens: TokenService | None
    limiter: RateLimiter
    audit: AuditTrail
    people: People

    @property
    def enabled(self) -> bool:
        return self.settings.auth == "smart"


def build(settings: Settings, database: Database, writer: Writer) -> Security:
    registry = ClientRegistry(database)
    tokens = None
    session_key = b""
    if settings.auth == "smart":
        key = load_signing_key(settings.auth_signing_key, settings.auth_signing_key_file)
        tokens = TokenService(registry, key, settings.auth_token_seconds)
        session_key = load_session_key(settings.session_secret, settings.session_secret_file)
        _warn_about_people(settings)
    else:
        log.warning("AUTHORIZATION IS OFF (GATEWAY_AUTH=off): every caller may read and write "
                    "everything, and the coordinator pages (/, /patients, /panel, "
                    "/measures/view) are open to anyone without signing in. For development "
                    "and the demo only; set GATEWAY_AUTH=smart anywhere else.")
    audit = AuditTrail(writer)
    failures = RateLimiter(settings.login_failures_per_minute / 60.0,
                           max(1, int(settings.login_failures_per_minute)))
    people = People(settings, UserRegistry(database), Signer(session_key), failures, audit)
    return Security(settings, registry, tokens,
                    RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
                    audit, people)


def _warn_about_people(settings: Settings) -> None:
    if settings.trusted_user_header:
        log.warning("People are signed in by the %s header (GATEWAY_TRUSTED_USER_HEADER): "
                    "this gateway must be reachable only through the proxy that sets it.",
                    settings.trusted_user_header)
    if not settings.session_cookie_secure:
        log.warning("Session cookies are not marked Secure "
                    "(GATEWAY_SESSION_COOKIE_SECURE=false): for development over plain HTTP "
                    "only.")


def install(app: Any, security: Security) -> None:
    """Add the middleware (outermost: security headers, then CORS when configured)."""
    app.state.security = security
    if security.enabled:
        app.add_middleware(AuthMiddleware, security=security)
        app.add_middleware(PeopleMiddleware, people=security.people)
    if security.settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=security.settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Prefer",
                                          "If-Match", "If-None-Exist"])
    app.add_middleware(RequestLimits, max_body=security.settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)


class RequestLimits:
    """Refuse what is too costly before any handler runs: bodies beyond
    GATEWAY_MAX_BODY_BYTES (413, also when sent chunked), query strings beyond
    8 KiB (414) or with more than 100 parameters (400)."""

    max_query = 8192
    max_params = 100

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._check(scope)
        if error is not None:
            response = outcome_response(error.status, error.issues())
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLarge(f"The request body is larger than {self.max_body} "
                                      "bytes.")
            return message

        await self.app(scope, counted, send)

    def _check(self, scope: Scope) -> GatewayError | None:
        query = scope.get("query_string", b"")
        if len(query) > self.max_query:
            return GatewayError(f"The query string is longer than {self.max_query} bytes.",
                                status=414, code="too-costly")
        if query and query.count(b"&") + 1 > self.max_params:
            return GatewayError(f"More than {self.max_params} query parameters.",
                                status=400, code="too-costly")
        if b"%00" in query or "\x00" in scope.get("path", ""):
            return _nul_in_url(query)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return PayloadTooLarge(f"The request body is larger than {self.max_body} "
                                       "bytes.")
        return None


def _nul_in_url(query: bytes) -> GatewayError:
    """No URL, parameter or FHIR string may hold a NUL (R4 datatypes.html#string), and
    PostgreSQL text cannot store one: refused before it reaches a handler."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    name = next((n for n, v in pairs if "\x00" in n or "\x00" in v), None)
    if name is None:
        return InvalidRequest("The request path contains a NUL character.")
    return InvalidRequest(f"The query parameter {name!r} contains a NUL character.",
                          expression=[name.replace("\x00", "")])


class SecurityHeaders:
    """Headers every answer carries (OWASP Secure Headers); a strict Content-Security-Policy
    on everything but the interactive API docs, which load their own scripts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_HEADERS)
        if not scope["path"].startswith(_DOCS):
            extra.append(_CSP)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


class AuthMiddleware:
    """Authenticate, authorize, rate-limit and audit each protected request."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security
        self._tokens: dict[str, tuple[float, str, Scopes]] = {}
        self._clients: dict[str, tuple[float, Client | None]] = {}
        self._throttled: dict[str, tuple[float, int]] = {}  # client: (recorded at, since)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected(scope["path"]) \
                or scope.get(USER_KEY) is not None:  # a person (api/people.py)
            await self.app(scope, receive, send)
            return
        interaction = classify(scope["method"], scope["path"])
        try:
            principal = await self._authorize(scope, interaction)
        except GatewayError as error:
            await self._refuse(scope, receive, send, error, interaction)
            return
        status, location = 500, ""

        async def watch(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                location = next((v.decode("latin-1") for k, v in headers
                                 if k.lower() == b"location"), "")
                message["headers"] = [*headers, _NO_STORE]
            await send(message)

        principal_token = current_principal.set(principal)
        access_token = current_access.set(principal.access())
        try:
            await self.app(scope, receive, watch)
        finally:
            current_access.reset(access_token)
            current_principal.reset(principal_token)
            self._audit(scope, principal.client_id, interaction, status, location)
            self._audit_entries(scope, principal.client_id)

    async def _authorize(self, scope: Scope, interaction: Interaction) -> Principal:
        principal = await self._principal(scope)
        wait = self.security.limiter.take(principal.client_id)
        if wait:
            raise TooManyRequests(f"Too many requests; try again in {wait} s.",
                                  headers={"Retry-After": str(wait)})
        if interaction.refused:
            raise Forbidden(f"{interaction.resource_type} resources are written by the "
                            "gateway only.")
        if interaction.admin:
            principal.require_admin()
        for resource_type, permission in interaction.needs:
            principal.require(resource_type, permission)
        if interaction.history_all and not principal.admin:
            raise Forbidden("Type and system history are for administrator clients; "
                            "search instead (results are limited to your organizations).")
        return principal

    async def _principal(self, scope: Scope) -> Principal:
        token = _bearer(scope)
        if token is None:
            raise Unauthorized("An access token is required (Authorization: Bearer ...); "
                               "get one at /auth/token.",
                               headers={"WWW-Authenticate": 'Bearer realm="fhir"'})
        verified = self._verified(token)
        client = await self._client(verified[0]) if verified else None
        if verified is None or client is None or client.disabled:
            raise Unauthorized("The access token is invalid or expired.", headers={
                "WWW-Authenticate": 'Bearer realm="fhir", error="invalid_token"'})
        return Principal(client.client_id, verified[1], client.organizations, client.admin)

    def _verified(self, token: str) -> tuple[str, Scopes] | None:
        """The client id and scopes of a valid token, remembered until it expires."""
        cached = self._tokens.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1], cached[2]
        assert self.security.tokens is not None
        claims = self.security.tokens.verify(token)
        if claims is None:
            return None
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        verified = (str(claims["client_id"]), Scopes.parse(str(claims.get("scope", ""))))
        self._tokens[token] = (float(claims["exp"]), *verified)
        return verified

    async def _client(self, client_id: str) -> Client | None:
        """The registered client, re-read every few seconds so disabling takes effect (off
        the event loop: it is a database read)."""
        now = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        client = await run_in_threadpool(self.security.registry.get, client_id)
        self._clients[client_id] = (now + 5.0, client)
        return client

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: GatewayError,
                      interaction: Interaction) -> None:
        response = outcome_response(error.status, error.issues(), error.headers)
        await response(scope, receive, send)
        verified = self._tokens.get(_bearer(scope) or "")
        if verified is None:  # refused for scope, role or rate: still an access attempt
            return
        if error.status == 429:
            refused = self._rate_limited(verified[1])
            if refused:
                self._audit(scope, verified[1], interaction, error.status,
                            detail=f"rate limited ({refused} request{'s' * (refused != 1)} "
                                   "refused since the previous record)")
            return
        self._audit(scope, verified[1], interaction, error.status)

    def _audit_entries(self, scope: Scope, client_id: str) -> None:
        """One AuditEvent per entry of a transaction or batch (api/guards.py)."""
        address = scope.get("client")
        for name, status, resource_type, resource_id, query in scope.get(AUDIT_ENTRIES, ()):
            self.security.audit.record(Access(
                client_id, name, status, resource_type, resource_id, query=query,
                patient=_patient_in(query), address=address[0] if address else None,
                detail="Bundle entry"))

    def _rate_limited(self, client_id: str) -> int:
        """How many rate-limit refusals a new AuditEvent stands for (0: none yet). A client
        flooding the gateway would otherwise make it write one record per refused request:
        the refusals of each ``_THROTTLED_AUDIT`` seconds are recorded as one, counted."""
        now = time.monotonic()
        since, count = self._throttled.get(client_id, (float("-inf"), 0))
        count += 1
        if now - since < _THROTTLED_AUDIT:
            self._throttled[client_id] = (since, count)
            return 0
        self._throttled[client_id] = (now, 0)
        return count

    def _audit(self, scope: Scope, client_id: str, interaction: Interaction,
               status: int, location: str = "", detail: str | None = None) -> None:
        query = scope.get("query_string", b"").decode("latin-1") or None
        address = scope.get("client")
        resource_type, resource_id = interaction.resource_type, interaction.resource_id
        if location and resource_id is None:  # a create: the id the server assigned
            resource_type, resource_id = _located(location) or (resource_type, None)
        self.security.audit.record(Access(
            client_id, interaction.name, status, resource_type, resource_id, query=query,
            patient=_patient_in(query), address=address[0] if address else None,
            detail=detail))


def _located(location: str) -> tuple[str, str] | None:
    """(type, id) from a Location header ``.../fhir/Type/id/_history/n``."""
    parts = location.split("/fhir/", 1)[-1].split("/")
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def _patient_in(query: str | None) -> str | None:
    """The patient a search names (``patient=`` or ``subject=Patient/...``), if one."""
    for name, value in parse_qsl(query or ""):
        if name in ("patient", "subject", "patient:Patient", "subject:Patient"):
            typed = "/" in value or name != "subject"
            reference = value if "/" in value else f"Patient/{value}" if typed else ""
            if reference.startswith("Patient/") and "," not in reference:
                return reference
    return None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
