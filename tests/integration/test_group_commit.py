"""Concurrent single-resource writes share commits (group commit) without sharing fates:
each request gets its own answer, and a failing write leaves the others untouched."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import LiveServer


def test_concurrent_creates_succeed_or_fail_one_by_one(live_server: LiveServer) -> None:
    base = live_server.base
    with httpx.Client() as client:
        pid = client.post(f"{base}/Patient", json={"resourceType": "Patient"}).json()["id"]

    def create(number: int) -> httpx.Response:
        subject = f"Patient/{pid}" if number % 2 == 0 else f"Patient/missing-{number}"
        with httpx.Client() as client:
            return client.post(f"{base}/CarePlan", json={
                "resourceType": "CarePlan", "status": "active", "intent": "plan",
                "title": f"plan {number}", "subject": {"reference": subject}})

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(create, range(40)))

    assert [r.status_code for r in responses] == [201 if n % 2 == 0 else 422
                                                  for n in range(40)]
    for number, response in enumerate(responses):
        if number % 2:
            assert f"Patient/missing-{number}" in response.json()["issue"][0]["diagnostics"]
    with httpx.Client() as client:
        found = client.get(f"{base}/CarePlan", params={"patient": pid, "_count": 100}).json()
        titles = sorted(e["resource"]["title"] for e in found["entry"])
        assert titles == sorted(f"plan {n}" for n in range(0, 40, 2))
        history = client.get(f"{base}/CarePlan/_history", params={"_count": 100}).json()
    assert history["total"] == 20
