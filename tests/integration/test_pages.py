"""The coordinator pages over HTTP (HTML), and ``gateway demo`` loading the demo data."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.config import get_settings
from tests.integration.timeline_helpers import PATIENT, put, write_story


def _html(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_search_by_name_and_identifier(client: TestClient) -> None:
    write_story(client)
    for query in ("Mbeki", "TL-0001"):
        html = _html(client, f"/?q={query}")
        assert f'href="/patients/{PATIENT}"' in html
        assert "Thandi Mbeki" in html
    assert "No patient matches" in _html(client, "/?q=Nobody")


def test_everything_is_escaped(client: TestClient) -> None:
    put(client, {"resourceType": "Patient", "id": "x-1",
                 "name": [{"family": "<script>alert(1)</script>"}]})
    response = client.get("/", params={"q": "<script>"})
    assert response.status_code == 200
    html = response.text
    assert 'href="/patients/x-1"' in html
    assert "<script>alert(1)</script>" not in html
    assert 'value="&lt;script&gt;"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_patient_page_shows_plan_team_follow_ups_and_timeline(client: TestClient) -> None:
    write_story(client)
    html = _html(client, f"/patients/{PATIENT}")
    text = _text(html)
    assert "Thandi Mbeki" in text
    follow_ups = html[html.index('id="follow-ups"'):html.index('id="plan"')]
    assert re.search(r'class="item bad">\s*<strong>Follow-up visit within 7 days</strong>',
                     follow_ups)
    assert re.search(r'class="item bad">\s*<strong>Medication reconciliation</strong>',
                     follow_ups)
    assert "Post-discharge call" not in follow_ups  # completed: no longer open
    plan = _text(html[html.index('id="plan"'):html.index('id="team"')])
    assert "Transitional care plan" in plan
    assert "HbA1c below 8%" in plan and "No readmission in 30 days" in plan
    assert "Follow-up visit within 7 days Ana Reyes 2026-11-21" in plan
    team = _text(html[html.index('id="team"'):html.index('id="timeline"')])
    assert "Ana Reyes (care manager)" in team
    assert "Sam Lee" not in team  # left the team on 2026-11-15
    timeline = _text(html[html.index('id="timeline"'):])
    assert "Discharged from Harbor General Hospital (inpatient) to home" in timeline
    assert timeline.index("Discharged from") < timeline.index("Admitted (inpatient)")
    assert 'href="/fhir/Encounter/tl-enc/_history/3"' in html


def test_unknown_patient_page_is_a_404_page(client: TestClient) -> None:
    assert "Patient/nobody is not known." in _html(client, "/patients/nobody", 404)


def test_panel_lists_patients_needing_attention(client: TestClient) -> None:
    write_story(client)
    html = _html(client, "/panel?days=36500")
    assert f'href="/patients/{PATIENT}"' in html
    row = _text(html[html.index('id="panel"'):])
    assert "Discharged from Harbor General Hospital (inpatient) to home; no follow-up visit" \
        in row
    assert "Overdue (flagged): Follow-up visit within 7 days, due 2026-11-21" in row
    assert "Overdue: Medication reconciliation, due 2026-11-18" in row
    assert '<option value="Practitioner/tl-cm"' in html
    # Sam Lee left the team: not a coordinator of it any more, so his panel is empty.
    assert PATIENT not in _html(client, "/panel?coordinator=Practitioner/tl-pcp&days=36500")
    assert PATIENT in _html(client, "/panel?coordinator=Practitioner/tl-cm&days=36500")
    # An ambulatory visit after the discharge is the follow-up.
    put(client, {"resourceType": "Encounter", "id": "tl-visit", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "AMB"}, "subject": {"reference": f"Patient/{PATIENT}"},
                 "period": {"start": "2026-11-16T10:00:00Z", "end": "2026-11-16T10:30:00Z"}})
    assert "no follow-up visit" not in _html(client, "/panel?days=36500")


def test_static_styles_and_nav(client: TestClient) -> None:
    html = _html(client, "/")
    assert 'href="/measures/view"' in html and 'href="/panel"' in html
    assert client.get("/measures/view").status_code == 200
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "--bad" in css.text


@pytest.fixture
def demo(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield lambda: CliRunner().invoke(cli_app, ["demo", "--load-only"])
    get_settings.cache_clear()


def test_gateway_demo_loads_the_example_data_once(client: TestClient, demo: Any) -> None:
    first = demo()
    assert first.exit_code == 0, first.output
    assert "03-silva-discharged.json: ok" in first.output
    again = demo()
    assert again.exit_code == 0 and "demo data already loaded" in again.output
    timeline = client.get("/patients/p-silva/timeline").json()["entries"]
    kinds = [e["kind"] for e in timeline]
    assert kinds.index("encounter.discharged") < kinds.index("encounter.transferred") \
        < kinds.index("encounter.admitted")
    assert "task.overdue" in kinds and "careteam.left" in kinds
