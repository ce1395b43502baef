"""Shared fixtures: a gateway per test on SQLite and on PostgreSQL, HTTP clients, live servers.

The backend is chosen by ``GATEWAY_TEST_DATABASE`` (``sqlite``, the default, or
``postgresql``). PostgreSQL tests use one throwaway database per run (created from
``GATEWAY_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and empty its tables between tests.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.store.tables import metadata

BACKEND = os.environ.get("GATEWAY_TEST_DATABASE", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    if BACKEND != "postgresql":
        yield None
        return
    with throwaway_postgres() as url:
        yield url


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create a PostgreSQL database for the length of the block, then drop it."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gateway_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def empty_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = [t for t in metadata.tables if _exists(connection, t)]
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
    engine.dispose()


def _exists(connection: Any, table: str) -> bool:
    return connection.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is not None


@pytest.fixture
def database_url(tmp_path: Path, postgres_database: str | None) -> str:
    if postgres_database is None:
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    empty_postgres(postgres_database)
    return postgres_database


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Bodies are prepared inline; tests/integration/test_preparation.py covers the pool.
    return Settings(database_url=database_url, base_url=None, prepare_processes=0,
                    freeze_gc=False)


@pytest.fixture
def app(settings: Settings) -> Any:
    application = create_app(settings)
    yield application
    application.state.database.dispose()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """An in-process HTTP client; FHIR base is http://testserver/fhir."""
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The gateway under a real uvicorn on 127.0.0.1, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
