"""The measures read from delivery records, with the real care-team routing and delivery
worker sending to a real HTTP receiver: hours from discharge to the first notification the
PCP's system accepted, and the share of care-team members whose systems hold the current
plan version.

Patient p: PCP dr-pcp (Endpoint pcp, accepts), care manager organization (Endpoint cm,
accepts, then refuses), pharmacist (Endpoint pharm, always refuses), dr-none (no Endpoint).
Two discharges (an inpatient stay and an ED visit), each admitted first: the admission
notifications reach the PCP too, and must not count. Patient q: PCP whose Endpoint refuses
(the discharge stays in the denominator, not notified). Patient r: no PCP (excluded).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from fastapi.testclient import TestClient

from gateway.sync.careteam import FORMAT_SYSTEM
from tests.integration.measures_support import (
    CARE_MANAGER_ROLE,
    PCP_ROLE,
    care_team,
    encounter,
    member,
    organization,
    patient,
    practitioner,
    put,
)
from tests.integration.sync_support import Received, ReceiverServer, WorkerThread, wait_for

REFUSING = {"/hook/pharm", "/hook/q"}


def _endpoint(api: TestClient, endpoint_id: str, address: str) -> str:
    put(api, {"resourceType": "Endpoint", "id": endpoint_id, "status": "active",
              "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                                           "endpoint-connection-type", "code": "hl7-fhir-rest"},
              "payloadType": [{"coding": [{"system": FORMAT_SYSTEM,
                                           "code": "backport-notification"}]}],
              "address": address})
    return endpoint_id


def _reached_through(api: TestClient, who: str, endpoint_id: str) -> str:
    """A practitioner with a PractitionerRole carrying the Endpoint."""
    reference = practitioner(api, who)
    put(api, {"resourceType": "PractitionerRole", "id": f"role-{who}",
              "practitioner": {"reference": reference},
              "endpoint": [{"reference": f"Endpoint/{endpoint_id}"}]})
    return reference


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _admit_and_discharge(api: TestClient, encounter_id: str, who: str, klass: str,
                         discharged: datetime) -> tuple[int, float]:
    """The discharge version and the discharge instant (epoch)."""
    start = _instant(discharged - timedelta(days=2))
    put(api, encounter(encounter_id, who, klass, start, status="in-progress"))
    stored = put(api, encounter(encounter_id, who, klass, start, _instant(discharged)))
    return int(stored["meta"]["versionId"]), discharged.timestamp()


def _deliveries(api: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    rows = api.get("/sync/deliveries", params={"_count": 1000}).json()
    return {(r["subscription"], r.get("focus") or ""): r for r in rows}


def _settled(api: TestClient, wanted: list[tuple[str, str]]) -> bool:
    found = _deliveries(api)
    return all(found.get(key, {}).get("status") in ("delivered", "failed") for key in wanted)


def _hours(api: TestClient, endpoint: str, focus: str, discharged: float) -> tuple[int, float]:
    row = _deliveries(api)[(f"Endpoint/{endpoint}", focus)]
    assert row["status"] == "delivered"
    return row["id"], round((row["delivered_at"] - discharged) / 3600, 2)


def test_pcp_notification_hours_and_current_plan_share(
        sync_app: Any, api: TestClient, receiver: ReceiverServer) -> None:
    refusing = set(REFUSING)
    receiver.receiver.respond = lambda r: 410 if r.path in refusing else 200
    base = receiver.url
    for who in "pqr":
        patient(api, who)
    pcp = _reached_through(api, "dr-pcp", _endpoint(api, "pcp", base + "/pcp"))
    pharmacist = _reached_through(api, "ph", _endpoint(api, "pharm", base + "/pharm"))
    q_pcp = _reached_through(api, "dr-q", _endpoint(api, "q", base + "/q"))
    manager = organization(api, "cm-org", _endpoint(api, "cm", base + "/cm"))
    care_team(api, "team-p", "p", [member(pcp, PCP_ROLE), member(manager, CARE_MANAGER_ROLE),
                                   member(pharmacist), member(practitioner(api, "dr-none"))])
    care_team(api, "team-q", "q", [member(q_pcp, PCP_ROLE)])
    care_team(api, "team-r", "r", [member(manager, CARE_MANAGER_ROLE)])
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = now - timedelta(hours=5), now - timedelta(hours=3)
    months = sorted({f"{first:%Y-%m}", f"{now:%Y-%m}"})
    period = f"{months[0]}..{months[-1]}"

    with WorkerThread(sync_app.state.database, sync_app.state.settings):
        v1, t1 = _admit_and_discharge(api, "e1", "p", "IMP", first)
        v2, t2 = _admit_and_discharge(api, "e2", "p", "EMER", second)
        vq, _ = _admit_and_discharge(api, "eq", "q", "IMP", second)
        put(api, encounter("er", "r", "IMP", _instant(first), _instant(second)))
        plan = put(api, {"resourceType": "CarePlan", "id": "plan-p", "status": "active",
                         "intent": "plan", "subject": {"reference": "Patient/p"}})
        wait_for(lambda: _settled(api, [
            ("Endpoint/pcp", f"Encounter/e1/_history/{v1}"),
            ("Endpoint/pcp", f"Encounter/e2/_history/{v2}"),
            ("Endpoint/q", f"Encounter/eq/_history/{vq}"),
            *[(f"Endpoint/{e}", "CarePlan/plan-p/_history/1") for e in ("pcp", "cm", "pharm")],
        ]), what="discharge and plan notifications")

        report = api.get("/measures", params={"period": period}).json()
        figure = report["measures"]["pcp_notification_hours"]["total"]
        d1, h1 = _hours(api, "pcp", f"Encounter/e1/_history/{v1}", t1)
        d2, h2 = _hours(api, "pcp", f"Encounter/e2/_history/{v2}", t2)
        assert (figure["numerator"], figure["denominator"]) == (2, 3)
        assert figure["median_hours"] == round(median([h1, h2]), 2)
        assert sorted(figure["numerator_encounters"], key=lambda e: e["encounter"]) == [
            {"encounter": "Encounter/e1", "delivery": d1, "endpoint": "Endpoint/pcp",
             "version": v1, "hours": h1},
            {"encounter": "Encounter/e2", "delivery": d2, "endpoint": "Endpoint/pcp",
             "version": v2, "hours": h2}]
        assert 3.0 <= h2 < 4.0 and 5.0 <= h1 < 6.0
        assert sorted(figure["denominator_encounters"]) == [
            "Encounter/e1", "Encounter/e2", "Encounter/eq"]
        assert figure["excluded"] == [{"encounter": "Encounter/er",
                                       "reason": "no PCP endpoint"}]

        held = report["plan_version_current"]
        assert (held["numerator"], held["denominator"], held["share"]) == (2, 3, 0.6667)
        assert held["plans"] == [{"plan": "CarePlan/plan-p/_history/1", "members": [
            {"member": manager, "endpoints": ["Endpoint/cm"], "holds": True},
            {"member": pcp, "endpoints": ["Endpoint/pcp"], "holds": True},
            {"member": pharmacist, "endpoints": ["Endpoint/pharm"], "holds": False}]}]

        refusing.add("/hook/cm")  # the care manager's system now refuses: it keeps version 1
        put(api, dict(plan, description="Follow-up visit booked"))
        wait_for(lambda: _settled(api, [(f"Endpoint/{e}", "CarePlan/plan-p/_history/2")
                                        for e in ("pcp", "cm", "pharm")]),
                 what="second plan version")
    report = api.get("/measures", params={"period": period, "patient": "Patient/p"}).json()
    held = report["patients"][0]["plan_version_current"]
    assert (held["numerator"], held["denominator"], held["share"]) == (1, 3, 0.3333)
    assert [m["member"] for m in held["plans"][0]["members"] if m["holds"]] == [pcp]
    assert held["plans"][0]["plan"] == "CarePlan/plan-p/_history/2"
    assert _received(receiver, "/hook/cm") >= 2


def _received(receiver: ReceiverServer, path: str) -> int:
    requests: list[Received] = receiver.receiver.requests
    return sum(1 for r in requests if r.path == path)
