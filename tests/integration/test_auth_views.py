"""The timeline and measures views under GATEWAY_AUTH=smart: a bearer token is required,
its scopes must allow reading every type the view shows, the client's organizations limit
which patients it covers (others' answer 404), and every call leaves an AuditEvent. With
authorization off nothing is asked for."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.auth_support import bearer, register

PERIOD = "2026-01..2026-03"
TIMELINE_SCOPES = "system/Encounter.r system/CarePlan.r system/CareTeam.r system/Task.r"
MEASURE_SCOPES = "system/Encounter.r system/CareTeam.r system/CarePlan.r"


def _put(http: TestClient, headers: dict[str, str], resource: dict[str, Any]) -> None:
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    response = http.put(url, json=resource, headers=headers)
    assert response.status_code in (200, 201), response.text


def populate(http: TestClient, headers: dict[str, str]) -> None:
    """Patients pa (team with org-a) and pb (team with org-b), each with a plan and an
    inpatient stay in February 2026."""
    for org in ("org-a", "org-b"):
        _put(http, headers, {"resourceType": "Organization", "id": org, "name": org})
    for patient, org in (("pa", "org-a"), ("pb", "org-b")):
        _put(http, headers, {"resourceType": "Patient", "id": patient,
                             "name": [{"family": patient.upper()}]})
        _put(http, headers, {"resourceType": "CarePlan", "id": f"plan-{patient}",
                             "status": "active", "intent": "plan", "title": f"Plan {patient}",
                             "subject": {"reference": f"Patient/{patient}"}})
        _put(http, headers, {"resourceType": "CareTeam", "id": f"team-{patient}",
                             "status": "active", "subject": {"reference": f"Patient/{patient}"},
                             "participant": [{"member": {"reference": f"Organization/{org}"}}]})
        _put(http, headers, {
            "resourceType": "Encounter", "id": f"enc-{patient}", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP"},
            "subject": {"reference": f"Patient/{patient}"},
            "period": {"start": "2026-02-01T10:00:00Z", "end": "2026-02-03T10:00:00Z"}})


@pytest.fixture
def clients(auth_app: Any, auth_http: TestClient) -> dict[str, dict[str, str]]:
    admin = bearer(auth_http, register(auth_app, "admin", "system/*.cruds", admin=True))
    populate(auth_http, admin)
    a = register(auth_app, "client-a", "system/*.rs", organizations=("org-a",))
    narrow = register(auth_app, "client-narrow", "system/Encounter.rs system/CarePlan.rs",
                      organizations=("org-a",))
    return {"admin": admin, "a": bearer(auth_http, a, "system/*.rs"),
            "timeline": bearer(auth_http, a, TIMELINE_SCOPES),
            "measures": bearer(auth_http, a, MEASURE_SCOPES),
            "narrow": bearer(auth_http, narrow, "system/Encounter.rs system/CarePlan.rs")}


def test_views_need_a_token(auth_http: TestClient,
                            clients: dict[str, dict[str, str]]) -> None:
    for url in ("/patients/pa/timeline", f"/measures?period={PERIOD}",
                f"/measures.csv?period={PERIOD}"):
        answer = auth_http.get(url)
        assert answer.status_code == 401, url
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["resourceType"] == "OperationOutcome"
        bad = auth_http.get(url, headers={"Authorization": "Bearer nonsense"})
        assert bad.status_code == 401
        assert "invalid_token" in bad.headers["www-authenticate"]


def test_views_need_read_on_every_type_they_show(auth_http: TestClient,
                                                 clients: dict[str, dict[str, str]]) -> None:
    timeline = auth_http.get("/patients/pa/timeline", headers=clients["timeline"])
    assert timeline.status_code == 200
    assert any(e["kind"] == "careplan.created" for e in timeline.json()["entries"])
    assert auth_http.get(f"/measures?period={PERIOD}",
                         headers=clients["measures"]).status_code == 200
    # Scopes for the measures lack Task: no timeline. Scopes without CareTeam: neither.
    refused = auth_http.get("/patients/pa/timeline", headers=clients["measures"])
    assert refused.status_code == 403
    assert "system/Task.r" in refused.json()["issue"][0]["diagnostics"]
    for url in ("/patients/pa/timeline", f"/measures?period={PERIOD}",
                f"/measures.csv?period={PERIOD}"):
        assert auth_http.get(url, headers=clients["narrow"]).status_code == 403, url


def test_another_organizations_patient_is_unknown(auth_http: TestClient,
                                                  clients: dict[str, dict[str, str]]) -> None:
    a = clients["a"]
    assert auth_http.get("/patients/pa/timeline", headers=a).status_code == 200
    hidden = auth_http.get("/patients/pb/timeline", headers=a)
    assert hidden.status_code == 404
    unknown = auth_http.get("/patients/nobody/timeline", headers=a)
    assert unknown.status_code == 404
    assert hidden.json()["issue"][0]["diagnostics"] == "Patient/pb is not known."
    assert unknown.json()["issue"][0]["code"] == hidden.json()["issue"][0]["code"]
    assert auth_http.get("/patients/pb/timeline", headers=clients["admin"]).status_code == 200
    answer = auth_http.get("/measures", params={"period": PERIOD, "patient": "Patient/pb"},
                           headers=a)
    assert answer.status_code == 404
    assert answer.json()["issue"][0]["expression"] == ["patient"]


def test_measures_cover_only_the_patients_the_client_may_see(
        auth_http: TestClient, clients: dict[str, dict[str, str]]) -> None:
    def panel(headers: dict[str, str], **params: str) -> list[str]:
        answer = auth_http.get("/measures", params={"period": PERIOD, **params},
                               headers=headers)
        assert answer.status_code == 200, answer.text
        return [row["patient"] for row in answer.json()["patients"]]

    assert panel(clients["admin"]) == ["Patient/pa", "Patient/pb"]
    assert panel(clients["a"]) == ["Patient/pa"]
    assert panel(clients["a"], organization="Organization/org-a") == ["Patient/pa"]
    assert panel(clients["a"], organization="Organization/org-b") == []
    assert panel(clients["admin"], organization="Organization/org-b") == ["Patient/pb"]
    csv = auth_http.get("/measures.csv", params={"period": PERIOD}, headers=clients["a"])
    assert csv.status_code == 200
    assert "Patient/pa" in csv.text and "Patient/pb" not in csv.text


def test_each_view_call_is_audited(auth_app: Any, auth_http: TestClient,
                                   clients: dict[str, dict[str, str]]) -> None:
    auth_http.get("/patients/pa/timeline", headers=clients["a"])
    auth_http.get("/patients/pb/timeline", headers=clients["a"])
    auth_http.get("/measures", params={"period": PERIOD, "patient": "Patient/pa"},
                  headers=clients["a"])
    auth_http.get("/patients/pa/timeline", headers=clients["narrow"])
    auth_app.state.security.audit.drain()
    bundle = auth_http.get("/fhir/AuditEvent", params={"_count": "200"},
                           headers=clients["admin"]).json()
    events = [e["resource"] for e in bundle.get("entry", [])
              if e["resource"]["agent"][0]["altId"] in ("client-a", "client-narrow")
              and e["resource"]["type"]["code"] == "rest"]
    seen = sorted((e["agent"][0]["altId"], e["subtype"][0]["code"], e["outcome"],
                   tuple(x["what"]["reference"] for x in e.get("entity", []) if "what" in x))
                  for e in events)
    assert seen == [("client-a", "read", "0", ("Patient/pa",)),
                    ("client-a", "read", "4", ("Patient/pb",)),
                    ("client-a", "search", "0", ("Patient/pa",)),
                    ("client-narrow", "read", "4", ("Patient/pa",))]


def test_with_authorization_off_the_views_stay_open(client: TestClient) -> None:
    populate(client, {})
    assert client.get("/patients/pb/timeline").status_code == 200
    rows = client.get("/measures", params={"period": PERIOD}).json()["patients"]
    assert [r["patient"] for r in rows] == ["Patient/pa", "Patient/pb"]
