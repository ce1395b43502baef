"""Plans and rosters through ``POST /ingest/careplan`` and ``POST /ingest/careteam``, read
back through the FHIR API: upsert by source identifier, ``unchanged`` on a re-send, new
versions of only what changed, ended participation for a removed member, identity shared
with the ADT feed, and field-level (JSON pointer) refusals that write nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from gateway.ingest.inbox import Inbox
from tests.integration.hl7v2_helpers import post, read, sample, search
from tests.integration.plans_helpers import PLAN_ID, TEAM_ID, example, send, statuses


def _one(client: TestClient, resource_type: str, **params: str) -> dict[str, Any]:
    found = search(client, resource_type, **params)
    assert len(found) == 1, found
    return found[0]


def test_roster_then_plan_are_created_and_read_back(client: TestClient) -> None:
    team_answer = send(client, "careteam", example("careteam"))
    assert team_answer.status_code == 201, team_answer.text
    assert team_answer.json()["outcome"] == "created"
    answer = send(client, "careplan", example("careplan"))
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Message-Id"] == str(answer.json()["message"])

    plan = _one(client, "CarePlan", identifier=PLAN_ID)
    team = _one(client, "CareTeam", identifier=TEAM_ID)
    assert plan["status"] == "active" and plan["intent"] == "plan"
    assert plan["period"] == {"start": "2026-01-05", "end": "2026-03-06"}
    assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]
    assert plan["subject"] == team["subject"]
    tasks = [read(client, a["reference"]["reference"]) for a in plan["activity"]]
    assert [t["status"] for t in tasks] == ["in-progress", "requested", "completed"]
    assert all(t["for"] == plan["subject"] for t in tasks)
    owner = read(client, tasks[0]["owner"]["reference"])
    assert owner["identifier"][0] == {"system": "http://hl7.org/fhir/sid/us-npi",
                                      "value": "1234567893"}
    goals = [read(client, g["reference"]) for g in plan["goal"]]
    assert goals[0]["target"] == [{"dueDate": "2026-03-01"}]
    conditions = [read(client, c["reference"]) for c in plan["addresses"]]
    assert conditions[1]["code"]["text"] == "11 active medications"  # unknown code kept
    warnings = {i["expression"][0] for i in answer.json()["issue"]}
    assert warnings == {"/riskFactors/1/code", "/interventions/1/type"}
    # The PCP in the roster and the Task owner are one Practitioner (found by NPI).
    pcp = next(p for p in team["participant"] if p["id"] == "npi-1234567893")
    assert pcp["member"] == tasks[0]["owner"]
    caregiver = read(client, team["participant"][3]["member"]["reference"])
    assert caregiver["resourceType"] == "RelatedPerson"
    assert caregiver["patient"] == plan["subject"]
    included = client.get("/fhir/CarePlan", params={
        "identifier": PLAN_ID, "_include": "CarePlan:care-team"}).json()
    assert {e["resource"]["resourceType"] for e in included["entry"]} == {"CarePlan",
                                                                        "CareTeam"}


def test_resending_writes_nothing_and_says_unchanged(client: TestClient) -> None:
    send(client, "careteam", example("careteam"))
    send(client, "careplan", example("careplan"))
    before = client.get("/fhir/_history", params={"_summary": "count"}).json()["total"]
    for kind in ("careteam", "careplan"):
        again = send(client, kind, example(kind))
        assert again.status_code == 200, again.text
        assert again.json()["outcome"] == "unchanged"
        assert set(statuses(again).values()) == {"unchanged"}
    after = client.get("/fhir/_history", params={"_summary": "count"}).json()["total"]
    assert after == before


def test_a_changed_plan_writes_only_what_changed(client: TestClient) -> None:
    send(client, "careplan", example("careplan"))
    changed = example("careplan")
    changed["interventions"][1]["status"] = "completed"
    answer = send(client, "careplan", changed)
    assert answer.status_code == 200 and answer.json()["outcome"] == "updated"
    written = {r["reference"] for r in answer.json()["resources"] if r["status"] == "updated"}
    assert len(written) == 1 and next(iter(written)).startswith("Task/")
    task = read(client, next(iter(written)).rsplit("/_history", 1)[0])
    assert task["status"] == "completed" and task["meta"]["versionId"] == "2"
    history = client.get(f"/fhir/Task/{task['id']}/_history").json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["completed", "requested"]
    plan = _one(client, "CarePlan", identifier=PLAN_ID)
    assert plan["meta"]["versionId"] == "1"


def test_a_removed_member_gets_period_end(client: TestClient) -> None:
    send(client, "careteam", example("careteam"))
    roster = example("careteam")
    roster["asOf"] = "2026-02-01"
    del roster["members"][2]  # the pharmacist leaves
    answer = send(client, "careteam", roster)
    assert answer.json()["outcome"] == "updated"
    team = _one(client, "CareTeam", identifier=TEAM_ID)
    pharmacist = next(p for p in team["participant"] if p["id"] == "npi-1992999998")
    assert pharmacist["period"] == {"end": "2026-02-01"}
    assert read(client, pharmacist["member"]["reference"])["resourceType"] == "Practitioner"
    assert send(client, "careteam", roster).json()["outcome"] == "unchanged"
    roster["members"].append(example("careteam")["members"][2])  # and comes back
    send(client, "careteam", roster)
    team = _one(client, "CareTeam", identifier=TEAM_ID)
    back = next(p for p in team["participant"] if p["id"] == "npi-1992999998")
    assert "period" not in back


def test_plan_resolves_to_the_patient_the_adt_feed_created(client: TestClient) -> None:
    post(client, sample("north_a01_v25"))  # PID-3: N100234^^^NORTH^MR
    patient = _one(client, "Patient", identifier="urn:hl7v2:authority:NORTH|N100234")
    plan = example("careplan")
    plan["patient"] = {"identifiers": [{"authority": "NORTH", "value": "N100234"}],
                       "family": "Someone-Else"}
    assert send(client, "careplan", plan).status_code == 201
    careplan = _one(client, "CarePlan", identifier=PLAN_ID)
    assert careplan["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert len(search(client, "Patient")) == 1
    assert read(client, f"Patient/{patient['id']}")["name"][0]["family"] == "Okafor"
    roster = example("careteam")
    roster["patient"] = {"identifiers": [{"authority": "SSA", "value": "123-45-6789"}]}
    send(client, "careteam", roster)
    team = _one(client, "CareTeam", identifier=TEAM_ID)
    assert team["subject"] == careplan["subject"]


def test_schema_violations_are_400_naming_json_pointers(app: Any,
                                                       client: TestClient) -> None:
    plan = example("careplan")
    plan["riskFactors"][2]["code"] = 42
    plan["patient"]["identifiers"] = []
    answer = send(client, "careplan", plan)
    assert answer.status_code == 400
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    pointers = {i["expression"][0] for i in body["issue"]}
    assert pointers == {"/riskFactors/2/code", "/patient/identifiers"}
    assert any(i["diagnostics"].startswith("/riskFactors/2/code:") for i in body["issue"])
    assert search(client, "CarePlan") == [] and search(client, "Patient") == []
    kept = Inbox(app.state.database).list("rejected")
    assert len(kept) == 1 and kept[0].channel == "careplan"
    assert kept[0].error_location in pointers


def test_bad_json_wrong_media_and_unknown_status(client: TestClient) -> None:
    answer = client.post("/ingest/careteam", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert client.post("/ingest/careplan", content=b"{}",
                       headers={"Content-Type": "text/csv"}).status_code == 415
    plan = example("careplan")
    plan["status"] = "dormant"
    refused = send(client, "careplan", plan)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["/status"]
    assert search(client, "CarePlan") == []


def test_a_failed_plan_is_kept_and_can_be_replayed(app: Any, client: TestClient) -> None:
    """A write that fails (here: the plan's author collides with two Practitioners) leaves
    nothing half-written; the stored document is replayed once the cause is fixed."""
    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
    twins = [client.post("/fhir/Practitioner", json={"resourceType": "Practitioner",
                                                      "identifier": [npi]}) for _ in range(2)]
    answer = send(client, "careplan", example("careplan"))
    assert answer.status_code == 412, answer.text
    assert search(client, "CarePlan") == [] and search(client, "Patient") == []
    failed = Inbox(app.state.database).list("error")
    assert len(failed) == 1
    client.delete(f"/fhir/Practitioner/{twins[1].json()['id']}")
    replayed = client.post(f"/ingest/messages/{failed[0].id}/$replay")
    assert replayed.status_code == 201, replayed.text
    assert _one(client, "CarePlan", identifier=PLAN_ID)["status"] == "active"


def test_a_plan_before_its_roster_names_the_team_once_it_arrives(client: TestClient) -> None:
    first = send(client, "careplan", example("careplan"))
    assert first.status_code == 201
    assert "/careTeamId" in {i["expression"][0] for i in first.json()["issue"]}
    assert "careTeam" not in _one(client, "CarePlan", identifier=PLAN_ID)
    send(client, "careteam", example("careteam"))
    again = send(client, "careplan", example("careplan"))
    assert again.json()["outcome"] == "updated"
    team = _one(client, "CareTeam", identifier=TEAM_ID)
    plan = _one(client, "CarePlan", identifier=PLAN_ID)
    assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]
    assert plan["meta"]["versionId"] == "2"


def test_adt_after_a_plan_finds_the_patient_the_plan_created(client: TestClient) -> None:
    plan = example("careplan")
    plan["patient"]["identifiers"] = [{"authority": "NORTH", "value": "N100234"}]
    send(client, "careplan", plan)
    post(client, sample("north_a01_v25"))
    patients = search(client, "Patient")
    assert len(patients) == 1
    encounter = _one(client, "Encounter")
    assert encounter["subject"] == _one(client, "CarePlan", identifier=PLAN_ID)["subject"]


def test_the_same_new_plan_sent_concurrently_is_created_once(app: Any,
                                                            client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from gateway.api.ingest_plans import plan_ingest

    class _Request:
        pass

    request = _Request()
    request.app = app  # type: ignore[attr-defined]
    ingest = plan_ingest(request)  # type: ignore[arg-type]
    raw = json.dumps(example("careplan")).encode()
    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(r.outcome for r in pool.map(
            lambda _i: ingest.receive(raw, "careplan"), range(4)))
    assert outcomes == ["created", "unchanged", "unchanged", "unchanged"]
    assert len(search(client, "CarePlan")) == 1 and len(search(client, "Patient")) == 1
    assert len(search(client, "Practitioner")) == 2


def test_what_a_plan_drops_is_kept_with_a_final_status(client: TestClient) -> None:
    send(client, "careplan", example("careplan"))
    first = _one(client, "CarePlan", identifier=PLAN_ID)
    smaller = example("careplan")
    del smaller["interventions"][1]  # planned barriers-to-care follow-up: dropped
    del smaller["interventions"][1]  # the completed outreach call: dropped, stays completed
    smaller["riskFactors"] = smaller["riskFactors"][:1]
    smaller["interventions"][0]["riskFactors"] = ["rf-1"]
    answer = send(client, "careplan", smaller)
    assert answer.json()["outcome"] == "updated"
    plan = _one(client, "CarePlan", identifier=PLAN_ID)
    assert len(plan["activity"]) == 1 and len(plan["addresses"]) == 1
    dropped_tasks = [read(client, a["reference"]["reference"]) for a in first["activity"][1:]]
    assert [t["status"] for t in dropped_tasks] == ["cancelled", "completed"]
    assert [t["meta"]["versionId"] for t in dropped_tasks] == ["2", "1"]
    dropped_goal = read(client, first["goal"][1]["reference"])
    assert dropped_goal["lifecycleStatus"] == "cancelled"
    dropped_condition = read(client, first["addresses"][2]["reference"])
    assert dropped_condition["clinicalStatus"]["coding"][0]["code"] == "inactive"
    assert send(client, "careplan", smaller).json()["outcome"] == "unchanged"


def test_replay_refuses_processed_and_unknown_messages(client: TestClient) -> None:
    answer = send(client, "careteam", example("careteam"))
    message = answer.json()["message"]
    assert client.post(f"/ingest/messages/{message}/$replay").status_code == 409
    assert client.post("/ingest/messages/999/$replay").status_code == 404


def test_a_deleted_plan_comes_back_when_sent_again(client: TestClient) -> None:
    send(client, "careplan", example("careplan"))
    plan = _one(client, "CarePlan", identifier=PLAN_ID)
    assert client.delete(f"/fhir/CarePlan/{plan['id']}").status_code == 200
    task = plan["activity"][0]["reference"]["reference"]
    assert client.delete(f"/fhir/{task}").status_code == 200
    again = send(client, "careplan", example("careplan"))
    assert again.status_code == 201 and again.json()["outcome"] == "created"
    assert read(client, f"CarePlan/{plan['id']}")["meta"]["versionId"] == "3"
    assert read(client, task)["meta"]["versionId"] == "3"


def test_failed_plans_are_replayed_by_the_shared_replay_too(app: Any, client: TestClient) -> None:
    """``POST /hl7v2/messages/$replay`` (and start-up recovery) dispatch on the channel: a
    stored plan is applied as a plan, not parsed as HL7 v2."""
    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
    twins = [client.post("/fhir/Practitioner", json={"resourceType": "Practitioner",
                                                      "identifier": [npi]}) for _ in range(2)]
    assert send(client, "careplan", example("careplan")).status_code == 412
    client.delete(f"/fhir/Practitioner/{twins[1].json()['id']}")
    replayed = client.post("/hl7v2/messages/$replay")
    assert replayed.status_code == 200
    assert [r["ackCode"] for r in replayed.json()["replayed"]] == ["AA"]
    assert _one(client, "CarePlan", identifier=PLAN_ID)["status"] == "active"
    assert Inbox(app.state.database).list("error") == []


def test_documents_committed_together_fail_alone(app: Any, client: TestClient) -> None:
    """Documents queued at the same moment share one transaction and one commit (the
    store's writer), each in a savepoint of its own: the middle one cannot be applied (its
    coordinator matches two Practitioners), is kept with its reason and can be replayed,
    while its neighbours are applied."""
    import threading

    from sqlalchemy import event

    from gateway.api.ingest_plans import plan_ingest
    from gateway.errors import MultipleMatches
    from gateway.ingest.plans import answer

    class _Request:
        pass

    request = _Request()
    request.app = app  # type: ignore[attr-defined]
    ingest = plan_ingest(request)  # type: ignore[arg-type]
    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1999999999"}
    twins = [client.post("/fhir/Practitioner", json={"resourceType": "Practitioner",
                                                      "identifier": [npi]}) for _ in range(2)]
    documents = []
    for number in (1, 2, 3):
        plan = example("careplan")
        plan["planId"] = f"CP-G{number}"
        if number == 2:
            plan["coordinator"] = {"npi": npi["value"]}
        documents.append(json.dumps(plan).encode())
    started, release = threading.Event(), threading.Event()

    def hold(_repo: Any) -> None:
        started.set()
        release.wait(10)

    commits: list[str] = []

    def count(_connection: Any) -> None:
        commits.append(threading.current_thread().name)

    engine = app.state.database.engine
    holding = ingest.writer.submit(hold)
    assert started.wait(10)
    futures = [ingest.submit(raw, "careplan") for raw in documents]
    event.listen(engine, "commit", count)
    try:
        release.set()
        holding.result(10)
        settled = [future.result(10) for future in futures]
    finally:
        event.remove(engine, "commit", count)
    # The holder's commit, then one for the three documents.
    assert commits.count("gateway-writer") == 2
    assert [answer(s).outcome for s in (settled[0], settled[2])] == ["created", "created"]
    assert isinstance(settled[1], MultipleMatches)
    assert sorted(p["identifier"][0]["value"] for p in search(client, "CarePlan")) == [
        "CP-G1", "CP-G3"]
    failed = Inbox(app.state.database).list("error")
    assert [m.error for m in failed] == [settled[1].message]
    client.delete(f"/fhir/Practitioner/{twins[1].json()['id']}")
    replayed = client.post(f"/ingest/messages/{failed[0].id}/$replay")
    assert replayed.status_code == 201, replayed.text


def test_a_plan_whose_identifier_two_careplans_hold_is_refused(client: TestClient) -> None:
    """The conditional update's rule (R4 http.html#cond-update): criteria matching more
    than one resource are refused with 412, and the document is kept as failed."""
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    system, value = PLAN_ID.split("|")
    for _ in range(2):
        created = client.post("/fhir/CarePlan", json={
            "resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": f"Patient/{patient}"},
            "identifier": [{"system": system, "value": value}]})
        assert created.status_code == 201, created.text
    answer = send(client, "careplan", example("careplan"))
    assert answer.status_code == 412, answer.text
    assert "match more than one CarePlan" in answer.text
