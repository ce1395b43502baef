"""Concurrent writers through a real HTTP server: If-Match gives one winner."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import LiveServer


def test_concurrent_updates_with_same_if_match(live_server: LiveServer) -> None:
    base = live_server.base
    with httpx.Client() as client:
        pid = client.post(f"{base}/Patient", json={"resourceType": "Patient"}).json()["id"]
    for round_number in range(5):
        version = round_number + 1
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def update(gender: str, version: int = version,
                   barrier: threading.Barrier = barrier,
                   statuses: list[int] = statuses) -> None:
            with httpx.Client() as client:
                barrier.wait()
                response = client.put(
                    f"{base}/Patient/{pid}",
                    json={"resourceType": "Patient", "id": pid, "gender": gender,
                          "name": [{"text": f"round {version}"}]},
                    headers={"If-Match": f'W/"{version}"'})
                statuses.append(response.status_code)

        threads = [threading.Thread(target=update, args=(g,)) for g in ("male", "female")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 412], statuses
    with httpx.Client() as client:
        final = client.get(f"{base}/Patient/{pid}").json()
    assert final["meta"]["versionId"] == "6"
