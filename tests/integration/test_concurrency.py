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


def test_an_update_waiting_for_another_transaction_updates_not_creates(
        database_url: str) -> None:
    """Two writers in separate transactions (the API's writer and, say, the workflow
    runner): the second waits for the first's row lock and then writes the next version
    of the same resource, not a second copy."""
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade
    from gateway.store.uow import UnitOfWork

    database = Database(database_url)
    try:
        upgrade(database)
        with UnitOfWork(database) as uow:
            uow.repository.update("Patient", "p1", {"resourceType": "Patient", "id": "p1"})
            uow.commit()
        first_holds_lock, results = threading.Event(), []

        def second() -> None:
            first_holds_lock.wait()
            with UnitOfWork(database) as uow:
                written = uow.repository.update(
                    "Patient", "p1", {"resourceType": "Patient", "id": "p1", "gender": "male"})
                uow.commit()
            results.append(written)

        thread = threading.Thread(target=second)
        thread.start()
        with UnitOfWork(database) as uow:
            uow.repository.update("Patient", "p1", {"resourceType": "Patient", "id": "p1",
                                                    "gender": "female"})
            first_holds_lock.set()
            thread.join(timeout=0.5)  # the second is blocked on the row lock meanwhile
            uow.commit()
        thread.join(timeout=30)
        assert len(results) == 1
        assert not results[0].created
        assert results[0].resource.version_id == 3
    finally:
        database.dispose()
