"""Helpers for sync tests: real HTTP receivers on 127.0.0.1 and delivery workers in threads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.store.db import Database
from gateway.sync.topics import BASE
from gateway.sync.worker import DeliveryWorker
from tests.conftest import BACKEND, LiveServer, empty_postgres, throwaway_postgres

SECRETS = ["new-secret", "old-secret"]
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
ADMITTED, DISCHARGED = BASE + "encounter-admitted", BASE + "encounter-discharged"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An ASGI app recording every request; ``status`` (or ``respond``) decides the answer."""

    status: int = 200
    respond: Callable[[Received], int] | None = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = Received(scope["method"], scope["path"],
                           {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body)
        status = self.respond(request) if self.respond else self.status
        with self.lock:
            request.headers["x-test-answer"] = str(status)
            self.requests.append(request)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def accepted(self, kind: str = "event-notification") -> list[Received]:
        """Requests of one notification type that were answered 2xx."""
        with self.lock:
            return [r for r in self.requests
                    if r.headers.get("x-gateway-notification-type") == kind
                    and r.headers["x-test-answer"].startswith("2")]


class ReceiverServer(LiveServer):
    """A Receiver under a real uvicorn on a free port."""

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(receiver)
        self.receiver = receiver

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


class WorkerThread:
    """A DeliveryWorker on its own event loop in a thread (what `gateway worker` runs)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.worker = DeliveryWorker(db, settings)
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop
        self.stop_event: asyncio.Event

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self.ready.set()
        await self.worker.run(self.stop_event)

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@contextmanager
def worker_process(database_url: str, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """`gateway worker` as a process of its own (``settings``: GATEWAY_* overrides)."""
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_LOG_LEVEL="warning",
               GATEWAY_DELIVERY_POLL_SECONDS="0.02", GATEWAY_DELIVERY_LEASE_SECONDS="1",
               GATEWAY_DELIVERY_TIMEOUT_SECONDS="0.5",
               GATEWAY_DELIVERY_BACKOFF_BASE_SECONDS="0.05",
               GATEWAY_DELIVERY_BACKOFF_MAX_SECONDS="0.2")
    env.update(settings)
    process = subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def fast_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings with quick polls and short backoff, so delivery tests do not sleep long."""
    values: dict[str, Any] = dict(
        database_url=database_url, base_url=None, delivery_in_process=False,
        delivery_poll_seconds=0.02, delivery_backoff_base_seconds=0.05,
        delivery_backoff_max_seconds=0.2, delivery_timeout_seconds=2.0,
        delivery_lease_seconds=5.0, delivery_signing_secrets=SECRETS)
    values.update(overrides)
    return Settings(**values)


def subscription(endpoint: str, criteria: str, *, payload: str | None = None,
                 headers: list[str] | None = None) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = payload
    if headers:
        channel["header"] = headers
    return {"resourceType": "Subscription", "status": "requested", "reason": "care team",
            "criteria": criteria, "channel": channel}


def topic_subscription(endpoint: str, topic: str, filters: list[str] | None = None,
                       content: str = "id-only", heartbeat: int | None = None
                       ) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                    "valueCode": content}]}}
    if heartbeat:
        channel["extension"] = [{"url": BACKPORT + "backport-heartbeat-period",
                                 "valueUnsignedInt": heartbeat}]
    body: dict[str, Any] = {"resourceType": "Subscription", "status": "requested",
                            "reason": "transitions", "criteria": topic, "channel": channel}
    if filters:
        body["_criteria"] = {"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                            "valueString": f} for f in filters]}
    return body


def encounter(patient_id: str, klass: str = "IMP", status: str = "in-progress"
              ) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": klass},
            "subject": {"reference": f"Patient/{patient_id}"}}


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(Receiver()) as server:
        yield server


@pytest.fixture
def sync_settings(database_url: str) -> Settings:
    return fast_settings(database_url)


@pytest.fixture
def sync_app(sync_settings: Settings) -> Iterator[Any]:
    application = create_app(sync_settings)
    yield application
    application.state.database.dispose()


@pytest.fixture
def api(sync_app: Any) -> Iterator[TestClient]:
    """The FHIR API without an in-process worker (tests start workers themselves)."""
    with TestClient(sync_app, base_url="http://testserver") as test_client:
        yield test_client


def new_patient(api: TestClient) -> str:
    return str(api.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"])


# -- a second gateway (a partner FHIR server) --------------------------------------------

@pytest.fixture(scope="session")
def partner_postgres_database() -> Iterator[str | None]:
    if BACKEND != "postgresql":
        yield None
        return
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def partner_database_url(tmp_path: Path, partner_postgres_database: str | None) -> str:
    if partner_postgres_database is None:
        return f"sqlite:///{tmp_path / 'partner.db'}"
    empty_postgres(partner_postgres_database)
    return partner_postgres_database


@pytest.fixture
def partner_gateway(partner_database_url: str) -> Iterator[LiveServer]:
    """Another gateway instance under uvicorn on 127.0.0.1, on its own database: the
    partner FHIR server (its own delivery worker is off)."""
    application = create_app(fast_settings(partner_database_url,
                                           identifier_system="urn:test:partner-gateway"))
    with LiveServer(application) as server:
        yield server
    application.state.database.dispose()
