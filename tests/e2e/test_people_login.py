"""With authorization on, a coordinator signs in through the login form in a real browser,
lands on the patient page they asked for, and signs out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.api.app import create_app
from gateway.auth.passwords import hash_password
from gateway.config import Settings
from gateway.demo import load_demo
from gateway.store.users import User, UserRegistry
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def secured_server(settings: Settings) -> Iterator[str]:
    """The demo data behind a gateway with GATEWAY_AUTH=smart and one registered person
    (cookies not Secure: the browser talks plain HTTP to 127.0.0.1)."""
    load_demo(settings, echo=lambda _line: None)
    application = create_app(settings.model_copy(update={
        "auth": "smart", "session_cookie_secure": False}))
    UserRegistry(application.state.database).add(
        User("grace", hash_password(PASSWORD), (), True, False))
    try:
        with LiveServer(application) as server:
            yield f"http://127.0.0.1:{server.port}"
    finally:
        application.state.database.dispose()


def test_sign_in_through_the_form_then_the_patient_page(page: Any,
                                                        secured_server: str) -> None:
    page.goto(secured_server + "/patients/p-silva")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.locator("[role=alert]").inner_text()
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", PASSWORD)
    screenshot(page, "login")
    page.click("button[type=submit]")
    page.wait_for_url(secured_server + "/patients/p-silva")
    assert page.locator("h1").inner_text() == "Lucia Silva"
    assert page.locator("#timeline li.event").count() > 0
    assert "grace" in page.locator("header .signout").inner_text()
    page.click("header .signout button")
    page.wait_for_url("**/login")
    page.goto(secured_server + "/patients/p-silva")
    page.wait_for_url("**/login?next=*")
