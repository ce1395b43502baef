"""People on the coordinator pages with GATEWAY_AUTH=smart: sign-in required (else a redirect
to /login), CSRF-protected login and logout forms, a signed session cookie, rate-limited and
audited failed sign-ins, the person's organizations limiting what every page shows, the
trusted-header mode for an authenticating proxy, and the ``gateway users`` commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.api.app import create_app
from gateway.auth.passwords import hash_password
from gateway.cli import app as cli_app
from gateway.config import Settings, get_settings
from gateway.store.users import USER_SYSTEM, User, UserRegistry
from tests.integration.auth_support import bearer, register
from tests.integration.test_auth_views import PERIOD, populate

PASSWORD = "correct horse battery"


def _overdue_tasks(http: TestClient, headers: dict[str, str]) -> None:
    for patient in ("pa", "pb"):
        response = http.put(f"/fhir/Task/task-{patient}", headers=headers, json={
            "resourceType": "Task", "id": f"task-{patient}", "status": "requested",
            "intent": "order", "description": f"Call {patient}",
            "for": {"reference": f"Patient/{patient}"},
            "restriction": {"period": {"end": "2026-01-05T00:00:00Z"}}})
        assert response.status_code in (200, 201), response.text


def _make(settings: Settings, **update: Any) -> Any:
    application = create_app(settings.model_copy(update={
        "auth": "smart", "rate_limit_per_second": 0, "base_url": "http://testserver/fhir",
        **update}))
    registry = UserRegistry(application.state.database)
    registry.add(User("alice", hash_password(PASSWORD), ("org-a",), False, False))
    registry.add(User("root", hash_password(PASSWORD), (), True, False))
    return application


@pytest.fixture
def people_app(settings: Settings) -> Iterator[Any]:
    application = _make(settings)
    yield application
    application.state.database.dispose()


@pytest.fixture
def browser(people_app: Any) -> Iterator[TestClient]:
    """An HTTPS client (the cookies are Secure) that does not follow redirects."""
    with TestClient(people_app, base_url="https://testserver",
                    follow_redirects=False) as http:
        admin = bearer(http, register(people_app, "loader", "system/*.cruds", admin=True))
        populate(http, admin)
        _overdue_tasks(http, admin)
        yield http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def sign_in(http: TestClient, name: str, password: str = PASSWORD,
            next_url: str = "/") -> Any:
    form = http.get("/login", params={"next": next_url})
    assert form.status_code == 200
    return http.post("/login", data={"username": name, "password": password,
                                     "csrf": csrf_of(form.text), "next": next_url})


def _audit(app: Any, http: TestClient) -> list[dict[str, Any]]:
    app.state.security.audit.drain()
    admin = bearer(http, register(app, f"auditor-{len(app.state.security.people.users.list())}"
                                  f"-{id(http)}", "system/*.rs", admin=True), "system/*.rs")
    bundle = http.get("/fhir/AuditEvent", params={"_count": "500"}, headers=admin).json()
    return [e["resource"] for e in bundle.get("entry", [])
            if e["resource"]["agent"][0]["who"]["identifier"]["system"] == USER_SYSTEM]


def test_pages_redirect_to_the_login_form(browser: TestClient) -> None:
    for url in ("/", "/patients/pa", "/panel?days=30", "/measures/view"):
        answer = browser.get(url)
        assert answer.status_code == 303, url
        assert answer.headers["location"].startswith("/login?next=%2F")
    assert browser.get("/patients/pa/timeline").status_code == 401
    assert browser.get("/login").status_code == 200
    assert browser.get("/static/style.css").status_code == 200


def test_sign_in_opens_the_pages_with_a_safe_cookie(browser: TestClient) -> None:
    answer = sign_in(browser, "alice", next_url="/patients/pa")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/patients/pa"
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith("gateway_session="))
    for attribute in ("HttpOnly", "SameSite=Lax", "Secure", "Max-Age=28800", "Path=/"):
        assert attribute in cookie
    page = browser.get("/patients/pa")
    assert page.status_code == 200
    assert "Plan pa" in page.text and "alice" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert browser.get("/panel").status_code == 200
    assert browser.get("/measures/view", params={"period": PERIOD}).status_code == 200
    # The JSON views the pages link to open with the session too.
    assert browser.get("/patients/pa/timeline").status_code == 200


def test_sign_in_goes_only_to_this_site(browser: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        assert sign_in(browser, "alice", next_url=target).headers["location"] == "/"


def test_wrong_password_is_refused_and_audited(people_app: Any,
                                               browser: TestClient) -> None:
    refused = sign_in(browser, "alice", "not the password")
    assert refused.status_code == 401
    assert "Wrong user name or password" in refused.text
    assert not any(c.startswith("gateway_session=") and "Max-Age=0" not in c
                   for c in refused.headers.get_list("set-cookie"))
    assert sign_in(browser, "nobody").status_code == 401
    assert browser.get("/patients/pa").status_code == 303
    assert sign_in(browser, "alice").status_code == 303
    events = [e for e in _audit(people_app, browser) if e["type"]["code"] == "110114"]
    seen = sorted((e["agent"][0]["altId"], e["outcome"]) for e in events)
    assert seen == [("alice", "0"), ("alice", "4"), ("nobody", "4")]


def test_failed_sign_ins_are_rate_limited(people_app: Any, browser: TestClient) -> None:
    for _ in range(5):
        assert sign_in(browser, "alice", "wrong").status_code == 401
    limited = sign_in(browser, "alice")  # the right password, too late
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert browser.get("/").status_code == 303


def test_a_person_sees_only_their_organizations_patients(browser: TestClient) -> None:
    sign_in(browser, "alice")
    assert browser.get("/patients/pa").status_code == 200
    hidden = browser.get("/patients/pb")
    assert hidden.status_code == 404
    assert "PB" not in hidden.text
    assert "/patients/pa" in browser.get("/", params={"q": "PA"}).text
    assert "/patients/pb" not in browser.get("/", params={"q": "PB"}).text
    panel = browser.get("/panel").text
    assert "Call pa" in panel and "Call pb" not in panel
    measures = browser.get("/measures", params={"period": PERIOD}).json()
    assert [r["patient"] for r in measures["patients"]] == ["Patient/pa"]
    assert browser.get("/patients/pb/timeline").status_code == 404
    # An administrator sees both.
    browser.cookies.clear()
    sign_in(browser, "root")
    assert browser.get("/patients/pb").status_code == 200
    panel = browser.get("/panel").text
    assert "Call pa" in panel and "Call pb" in panel


def test_logout_ends_the_session(people_app: Any, browser: TestClient) -> None:
    sign_in(browser, "alice")
    page = browser.get("/patients/pa")
    stolen = browser.cookies.get("gateway_session")
    assert browser.post("/logout", data={}).status_code == 403  # no CSRF token
    assert browser.get("/patients/pa").status_code == 200
    out = browser.post("/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser.get("/patients/pa").status_code == 303
    browser.cookies.set("gateway_session", stolen, domain="testserver")
    assert browser.get("/patients/pa").status_code == 303  # the old cookie is dead
    kinds = [(e["type"]["code"], e.get("subtype", [{}])[0].get("code"))
             for e in _audit(people_app, browser)]
    assert ("110114", "110123") in kinds
    assert ("rest", "read") in kinds


def test_login_needs_the_forms_csrf_token(browser: TestClient) -> None:
    browser.get("/login")
    for token in ("", "forged"):
        answer = browser.post("/login", data={"username": "alice", "password": PASSWORD,
                                               "csrf": token})
        assert answer.status_code == 403
        assert "gateway_session" not in browser.cookies
    fresh = TestClient(browser.app, base_url="https://testserver", follow_redirects=False)
    token = csrf_of(browser.get("/login").text)  # a token without its cookie
    assert fresh.post("/login", data={"username": "alice", "password": PASSWORD,
                                      "csrf": token}).status_code == 403


def test_a_forged_session_cookie_is_ignored(browser: TestClient) -> None:
    browser.cookies.set("gateway_session", "abc.def", domain="testserver")
    assert browser.get("/patients/pa").status_code == 303


def test_disabled_people_lose_their_sessions(people_app: Any, browser: TestClient) -> None:
    sign_in(browser, "alice")
    assert browser.get("/patients/pa").status_code == 200
    UserRegistry(people_app.state.database).set_disabled("alice")
    assert browser.get("/patients/pa").status_code == 303
    assert sign_in(browser, "alice").status_code == 401


def test_a_trusted_proxy_header_names_the_person(settings: Settings) -> None:
    application = _make(settings, trusted_user_header="X-Forwarded-User")
    try:
        with TestClient(application, base_url="https://testserver",
                        follow_redirects=False) as http:
            admin = bearer(http, register(application, "loader", "system/*.cruds",
                                          admin=True))
            populate(http, admin)
            as_alice = {"X-Forwarded-User": "alice"}
            page = http.get("/patients/pa", headers=as_alice)
            assert page.status_code == 200 and "alice" in page.text
            assert http.get("/patients/pb", headers=as_alice).status_code == 404
            assert http.get("/patients/pb", headers={"X-Forwarded-User": "root"}
                            ).status_code == 200
            assert http.get("/patients/pa", headers={"X-Forwarded-User": "mallory"}
                            ).status_code == 403
            assert http.get("/patients/pa").status_code == 303  # no header: the form
    finally:
        application.state.database.dispose()


def test_without_the_setting_the_header_is_ignored(browser: TestClient) -> None:
    assert browser.get("/patients/pa", headers={"X-Forwarded-User": "root"}).status_code == 303


def test_with_authorization_off_the_pages_stay_open(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/login", follow_redirects=False).status_code == 303


@pytest.fixture
def users_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()

    def invoke(*args: str, **kwargs: Any) -> Any:
        return CliRunner().invoke(cli_app, ["users", *args], **kwargs)

    yield invoke
    get_settings.cache_clear()


def test_users_commands(settings: Settings, users_cli: Any, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("a long enough secret\n")
    added = users_cli("add", "carol", "--password-file", str(secret),
                      "--organization", "Organization/org-b")
    assert added.exit_code == 0, added.output
    prompted = users_cli("add", "dave", "--admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert users_cli("add", "carol", "--password-file", str(secret), "--admin").exit_code == 1
    short = tmp_path / "short"
    short.write_text("short")
    assert users_cli("add", "erin", "--password-file", str(short), "--admin").exit_code == 2
    assert users_cli("add", "erin", "--password-file", str(secret)).exit_code == 2
    listed = users_cli("list").output
    assert "carol\tactive\tOrganization/org-b" in listed and "dave\tactive\tadmin" in listed
    assert "erin" not in listed
    application = create_app(settings.model_copy(update={
        "auth": "smart", "base_url": "http://testserver/fhir"}))
    try:
        with TestClient(application, base_url="https://testserver",
                        follow_redirects=False) as http:
            assert sign_in(http, "carol", "a long enough secret").status_code == 303
            assert http.get("/").status_code == 200
            assert users_cli("disable", "carol").exit_code == 0
            assert http.get("/").status_code == 303
    finally:
        application.state.database.dispose()
    assert "carol\tdisabled" in users_cli("list").output
    assert users_cli("disable", "nobody").exit_code == 1
