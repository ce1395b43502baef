"""What a care coordinator sees in a real browser: search, the patient page, the panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.coordination.runner import workflow_runner
from tests.e2e.conftest import screenshot
from tests.integration.hl7v2_helpers import sample

pytestmark = pytest.mark.browser
RED = "rgb(180, 35, 24)"  # --bad in static/style.css


def _event(page: Any, text: str) -> Any:
    return page.locator("#timeline li.event", has_text=text)


def test_search_then_the_patient_page(page: Any, demo_server: str) -> None:
    page.goto(demo_server + "/")
    page.fill("#q", "Silva")
    page.press("#q", "Enter")
    page.wait_for_selector("#results")
    screenshot(page, "search")
    page.click("text=Lucia Silva")
    page.wait_for_url(demo_server + "/patients/p-silva")
    assert page.locator("h1").inner_text() == "Lucia Silva"

    discharge = _event(page, "Discharged from Riverside General Hospital (inpatient) to Home")
    assert discharge.is_visible()
    assert "encounter.discharged" in discharge.inner_text()
    admitted = _event(page, "Admitted (inpatient) to Riverside General Hospital")
    transfer = _event(page, "Transferred to Riverside 4 West from Riverside ICU")
    # Newest first: discharge above the transfer above the admission.
    assert discharge.bounding_box()["y"] < transfer.bounding_box()["y"] \
        < admitted.bounding_box()["y"]

    plan = page.locator("#plan")
    assert "Complex care management plan" in plan.inner_text()
    assert plan.locator("text=HbA1c below 8% within 90 days").is_visible()
    assert plan.locator("tr", has_text="Follow-up visit within 7 days of discharge") \
        .locator("td").nth(1).inner_text() == "Grace Lee"

    overdue = page.locator("#follow-ups li", has_text="Medication reconciliation")
    assert "overdue" in overdue.inner_text().lower()
    title_colour = overdue.locator("strong").evaluate("e => getComputedStyle(e).color")
    assert title_colour == RED
    not_overdue = page.locator("#follow-ups li", has_text="Follow-up visit within 7 days")
    assert not_overdue.locator("strong").evaluate("e => getComputedStyle(e).color") != RED

    team = page.locator("#team").inner_text()
    assert "Chidi Okoro (home health nurse)" in team
    assert "Ravi Patel" not in team  # the hospitalist left the team at discharge
    assert _event(page, "Ravi Patel (hospitalist) left Care team for Lucia Silva").is_visible()
    # Dates are shown absolute with the relative time beside them.
    when = discharge.locator(".when").inner_text()
    assert "2026-11-20 15:30 UTC" in when and "ago" in when
    screenshot(page, "patient")


def test_the_panel_shows_who_needs_attention(page: Any, demo_server: str) -> None:
    page.goto(demo_server + "/panel?days=36500")
    page.select_option("#coordinator", label="Maria Gomez")
    page.click("button:has-text('Show')")
    page.wait_for_selector("#panel")
    row = page.locator("#panel tr", has_text="Lucia Silva")
    text = row.inner_text()
    assert "Discharged from Riverside General Hospital (inpatient) to Home; " \
           "no follow-up visit since" in text
    assert "Overdue (flagged): Medication reconciliation, due 2026-11-21" in text
    assert row.locator(".reasons li").first.evaluate("e => getComputedStyle(e).color") == RED
    # Ada Okafor had her follow-up visit after her discharge: not on the panel for that.
    assert "Ada Okafor" not in page.locator("#panel").inner_text()
    screenshot(page, "panel")
    row.locator("a").click()
    page.wait_for_url(demo_server + "/patients/p-silva")


def test_an_adt_discharge_appears_on_the_page(page: Any, demo_server: str) -> None:
    for name in ("north_a01_v25", "north_a03_v25"):
        answer = httpx.post(demo_server + "/hl7v2", content=sample(name),
                            headers={"Content-Type": "x-application/hl7-v2+er7"})
        assert answer.status_code == 200 and b"MSA|AA" in answer.content
    page.goto(demo_server + "/")
    page.fill("#q", "N100234")
    page.press("#q", "Enter")
    page.click("#results a")
    page.wait_for_selector("#timeline")
    assert _event(page, "Discharged from NORTH (inpatient)").is_visible()
    assert _event(page, "Admitted (inpatient) to NORTH").is_visible()


def test_a_discharge_of_an_enrolled_patient_puts_follow_ups_on_the_page(
        page: Any, demo_server: str, app: Any) -> None:
    """Issue 7's flow in one go: an ADT discharge of a patient in the care program raises
    the follow-ups (the workflow runner, as the delivery worker runs it), and the
    coordinator sees them open on the patient's page and in the timeline."""
    now = datetime.now(UTC)
    stamps = {"20240305081500": (now - timedelta(days=2)).strftime("%Y%m%d%H%M%S"),
              "20240309104500": (now - timedelta(hours=1)).strftime("%Y%m%d%H%M%S"),
              "20240309110000": (now - timedelta(minutes=59)).strftime("%Y%m%d%H%M%S"),
              "N100234": "MRN1001", "V20240001": "V-E2E-1"}
    for name in ("north_a01_v25", "north_a03_v25"):
        answer = httpx.post(demo_server + "/hl7v2", content=sample(name, stamps),
                            headers={"Content-Type": "x-application/hl7-v2+er7"})
        assert answer.status_code == 200 and b"MSA|AA" in answer.content
    runner = workflow_runner(app.state.database, app.state.settings)
    assert runner.run_until_idle() > 0
    page.goto(demo_server + "/")
    page.fill("#q", "MRN1001")
    page.press("#q", "Enter")
    page.click("#results a")
    follow_ups = page.locator("#follow-ups")
    for description in ("Follow-up visit within 7 days of discharge",
                        "Call the patient within 2 business days of discharge",
                        "Reconcile medications after discharge",
                        "Contact the inpatient team about the admission"):
        assert follow_ups.locator("li", has_text=description).first.is_visible()
    assert _event(page, "Discharged from NORTH (inpatient)").is_visible()
    assert page.locator("#timeline li.event", has_text="Follow-up visit within 7 days").count() >= 1
