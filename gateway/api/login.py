"""Signing people in and out of the coordinator pages: ``GET/POST /login``, ``POST /logout``.

The login form carries a CSRF token that must match a signed, SameSite=Strict cookie set
with the form (OWASP CSRF Prevention Cheat Sheet, "signed double-submit cookie"); logout
is a POST carrying the session's own CSRF token. A successful sign-in opens a session
(store/users.py) in a signed, HttpOnly, SameSite=Lax cookie (Secure unless
GATEWAY_SESSION_COOKIE_SECURE=false) that ends after GATEWAY_SESSION_HOURS or at logout.
Failed sign-ins are limited per network address and per user name (429 with Retry-After
beyond GATEWAY_LOGIN_FAILURES_PER_MINUTE), and every sign-in, failed or not, and every
sign-out is an AuditEvent (DICOM 110114 User Authentication).
"""

from __future__ import annotations

import hmac
import secrets
import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from gateway.api.pages import templates
from gateway.api.params import small_form
from gateway.api.people import LOGIN_COOKIE, SESSION_COOKIE, People, cookies
from gateway.auth.passwords import verify_password

router = APIRouter(include_in_schema=False)
_FORM_SECONDS = 3600
_MAX_FORM = 8 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def _people(request: Request) -> People | None:
    security = request.app.state.security
    return security.people if security.enabled else None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(request: Request, people: People, next_url: str, *, status: int = 200,
          error: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The login form with a fresh CSRF token, and its signed cookie."""
    token, signed = people.signer.new()
    response = templates.TemplateResponse(
        request, "login.html", {"csrf": token, "next": next_url, "error": error,
                                "active": "login"},
        status_code=status, headers={**_NO_STORE, **(headers or {})})
    response.headers.append("set-cookie", people.cookie(LOGIN_COOKIE, signed, _FORM_SECONDS,
                                                        strict=True))
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    people = _people(request)
    if people is None:  # GATEWAY_AUTH=off: the pages are open
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, people, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    people = _people(request)
    if people is None:
        return RedirectResponse("/", status_code=303)
    form = await small_form(request, _MAX_FORM) or {}
    username, password = form.get("username", "")[:128], form.get("password", "")[:1024]
    csrf, target = form.get("csrf", ""), safe_next(form.get("next"))
    expected = people.signer.unsign(cookies(request.scope).get(LOGIN_COOKIE))
    if not csrf or expected is None or not hmac.compare_digest(csrf, expected):
        return _form(request, people, target, status=403,
                     error="The form had expired or was not sent from this site; try again.")
    address = request.client.host if request.client else "unknown"
    keys = (f"login:{address}", f"login-user:{username.lower()}")
    wait = max(people.failures.waiting(key) for key in keys)
    if wait:
        people.record(username or "unknown", "login", 429, request.scope, detail="rate limited")
        return _form(request, people, target, status=429, headers={"Retry-After": str(wait)},
                     error=f"Too many failed sign-ins; try again in {wait} seconds.")
    user = await run_in_threadpool(people.users.get, username) if username else None
    valid = await run_in_threadpool(verify_password, password,
                                    user.password_hash if user else None)
    if user is None or user.disabled or not valid:
        for key in keys:
            people.failures.take(key)
        people.record(username or "unknown", "login", 401, request.scope,
                      detail="wrong user name or password")
        return _form(request, people, target, status=401,
                     error="Wrong user name or password.")
    return await _signed_in(request, people, user.name, target)


async def _signed_in(request: Request, people: People, name: str, target: str) -> Response:
    secret, signed = people.signer.new()
    seconds = int(people.settings.session_hours * 3600)
    await run_in_threadpool(people.users.open_session, name, secret,
                            secrets.token_urlsafe(24), time.time() + seconds)
    people.record(name, "login", 200, request.scope)
    response = RedirectResponse(target, status_code=303, headers=_NO_STORE)
    response.headers.append("set-cookie", people.cookie(SESSION_COOKIE, signed, seconds))
    response.headers.append("set-cookie", people.cookie(LOGIN_COOKIE, "", 0, strict=True))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    people = _people(request)
    if people is None:
        return RedirectResponse("/", status_code=303)
    csrf = (await small_form(request, _MAX_FORM) or {}).get("csrf", "")
    secret = people.signer.unsign(cookies(request.scope).get(SESSION_COOKIE))
    session = await run_in_threadpool(people.users.session, secret) if secret else None
    if session is None:
        return RedirectResponse("/login", status_code=303, headers=_NO_STORE)
    if not csrf or not hmac.compare_digest(csrf, session.csrf):
        return Response("The sign-out form was not sent from this site.", status_code=403,
                        media_type="text/plain", headers=_NO_STORE)
    assert secret is not None
    await run_in_threadpool(people.users.end_session, secret)
    people.record(session.user.name, "logout", 200, request.scope)
    response = RedirectResponse("/login", status_code=303, headers=_NO_STORE)
    response.headers.append("set-cookie", people.cookie(SESSION_COOKIE, "", 0))
    return response

