"""Browser tests: the demo data behind a live gateway, driven by Playwright in Debian's
headless chromium. Without a chromium they skip with the reason, except under ``CI=true``,
where a missing browser fails the run (``make install`` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.demo import load_demo
from tests.conftest import LiveServer

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """Debian's chromium (or another Chrome on PATH); GATEWAY_TEST_CHROMIUM overrides."""
    configured = os.environ.get("GATEWAY_TEST_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module. Playwright's sync API keeps an asyncio loop running on
    this thread while it is open, so it must close before other modules' tests run
    ``asyncio.run`` in the same process."""
    executable = chromium_path()
    if executable is None:
        message = ("no chromium found (apt-get install chromium, or `make install` as root; "
                   "GATEWAY_TEST_CHROMIUM names another binary)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def demo_server(app: Any, settings: Settings) -> Iterator[str]:
    """The gateway with the demo data (as `gateway demo` loads it), at its root URL."""
    load_demo(settings, echo=lambda _line: None)
    with LiveServer(app) as server:
        yield f"http://127.0.0.1:{server.port}"


def screenshot(page: Any, name: str) -> None:
    """Full-page screenshot into docs/screenshots/ (linked from the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
