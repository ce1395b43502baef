"""People on the coordinator pages: who is signed in, and what they may see.

With ``GATEWAY_AUTH=smart`` every page (``/``, ``/patients/{id}``, ``/panel``,
``/measures/view``) needs a signed-in person, else it redirects to ``/login``. A person is
found from the session cookie (api/login.py makes it), or, when
``GATEWAY_TRUSTED_USER_HEADER`` is set, from that header as an authenticating proxy sets it
(the name must be a registered, enabled user). Their organizations limit what the pages
show through the same access rule as a client's (store/access.py), and each page view is
recorded as an AuditEvent with the person as agent. The JSON/CSV views the pages link to
(timeline, measures) accept a signed-in person too when no bearer token is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.interactions import classify, is_view
from gateway.auth.audit import Access, AuditTrail
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.sessions import Signer
from gateway.config import Settings
from gateway.store.access import current_access
from gateway.store.users import USER_SYSTEM, Session, User, UserRegistry

SESSION_COOKIE = "gateway_session"
LOGIN_COOKIE = "gateway_login"
USER_KEY = "gateway.user"  # the signed-in User, in the ASGI scope
SESSION_KEY = "gateway.session"  # their Session (None behind a trusted proxy)
_PATIENT_PAGE = re.compile(r"^/patients/([^/]+)$")
_PAGES = frozenset({"/", "/panel", "/measures/view"})


@dataclass
class People:
    """The process's user registry, cookie signer, failed-login limiter and settings."""

    settings: Settings
    users: UserRegistry
    signer: Signer
    failures: RateLimiter
    audit: AuditTrail

    def cookie(self, name: str, value: str, max_age: int, *, strict: bool = False) -> str:
        """A Set-Cookie value: HttpOnly, SameSite, Secure unless turned off for development."""
        same_site = "Strict" if strict else "Lax"
        secure = "; Secure" if self.settings.session_cookie_secure else ""
        return (f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; "
                f"SameSite={same_site}{secure}")

    def session(self, scope: Scope) -> Session | None:
        secret = self.signer.unsign(cookies(scope).get(SESSION_COOKIE))
        return self.users.session(secret) if secret else None

    def record(self, user: str, interaction: str, status: int, scope: Scope, **extra: Any) -> None:
        address = scope.get("client")
        self.audit.record(Access(user, interaction, status, agent_system=USER_SYSTEM,
                                 address=address[0] if address else None, **extra))


def signed_in(request: Any) -> dict[str, str] | None:
    """For the layout: the signed-in person's name and their sign-out CSRF token (none
    behind a trusted proxy, which signs people out itself)."""
    user = request.scope.get(USER_KEY)
    if user is None:
        return None
    session = request.scope.get(SESSION_KEY)
    return {"name": user.name, "csrf": session.csrf if session is not None else ""}


def is_page(path: str) -> bool:
    return path in _PAGES or _PATIENT_PAGE.match(path) is not None


class PeopleMiddleware:
    """Sign-in required on the pages; the person's access set for their queries."""

    def __init__(self, app: ASGIApp, people: People) -> None:
        self.app = app
        self.people = people

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (is_page(path) or is_view(path)):
            await self.app(scope, receive, send)
            return
        if is_view(path) and _has_bearer(scope):
            await self.app(scope, receive, send)  # a client: api/security.py
            return
        user, session, refusal = await run_in_threadpool(self._person, scope)  # DB reads
        if user is None:
            if is_page(path):
                await _page_refusal(scope, send, refusal)
            else:
                await self.app(scope, receive, send)  # 401 from api/security.py
            return
        scope[USER_KEY], scope[SESSION_KEY] = user, session
        await self._as(user, scope, receive, send)

    def _person(self, scope: Scope) -> tuple[User | None, Session | None, str | None]:
        """(user, session, why refused): the trusted header when configured and present,
        else the session cookie."""
        header = self.people.settings.trusted_user_header
        if header:
            name = _header(scope, header.lower())
            if name is not None:
                user = self.people.users.get(name)
                if user is None or user.disabled:
                    return None, None, f"{name} is not a registered, enabled user here."
                return user, None, None
        session = self.people.session(scope)
        return (session.user, session, None) if session else (None, None, None)

    async def _as(self, user: User, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"cache-control",
                                                                    b"no-store")]
            await send(message)

        token = current_access.set(user.access())
        try:
            await self.app(scope, receive, watch)
        finally:
            current_access.reset(token)
            self._audit(user, scope, status)

    def _audit(self, user: User, scope: Scope, status: int) -> None:
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1") or None
        page = _PATIENT_PAGE.match(path)
        if page is not None:
            self.people.record(user.name, "read", status, scope, resource_type="Patient",
                               resource_id=page.group(1))
        elif is_view(path):
            interaction = classify(scope["method"], path)
            self.people.record(user.name, interaction.name, status, scope, query=query,
                               resource_type=interaction.resource_type,
                               resource_id=interaction.resource_id)
        else:
            self.people.record(user.name, "search", status, scope, query=query,
                               detail=path)


async def _page_refusal(scope: Scope, send: Send, refusal: str | None) -> None:
    """303 to the login form (coming back here afterwards), or 403 when a trusted proxy
    named someone who is not registered."""
    if refusal is not None:
        body = refusal.encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    target = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        target += "?" + query
    location = "/login?next=" + quote(target, safe="")
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", location.encode("latin-1")), (b"content-length", b"0"),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key == wanted:
            text = value.decode("latin-1").strip()
            return text or None
    return None


def _has_bearer(scope: Scope) -> bool:
    return _header(scope, "authorization") is not None


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies by name (the first of each)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, content = part.strip().partition("=")
                found.setdefault(name, content)
    return found
