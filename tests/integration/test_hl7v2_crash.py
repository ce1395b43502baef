"""Killing `gateway mllp` mid-stream loses no acknowledged message: a real listener process
is SIGKILLed while a sender streams ADT messages; after a restart every message that got an
AA is stored as processed and its Encounter exists."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.ingest.inbox import PROCESSED, Inbox
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from tests.conftest import free_port
from tests.integration.hl7v2_helpers import MllpClient, ack_of, sample


def _start(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_LOG_LEVEL": "warning"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "mllp", "--port", str(port)], env=env,
            stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gateway mllp did not start: {log.read_text()}")


def _message(number: int) -> bytes:
    return sample("north_a01_v25", {"N-0001": f"K-{number}", "V20240001": f"V-K{number}"})


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_message(database_url: str,
                                                          tmp_path: Path) -> None:
    database = Database(database_url)
    upgrade(database)
    port, log = free_port(), tmp_path / "mllp.log"
    process = _start(database_url, port, log)
    acknowledged: list[str] = []
    try:
        client = MllpClient(port)
        for number in range(200):
            if number == 25:
                process.send_signal(signal.SIGKILL)
            try:
                ack = ack_of(client.send(_message(number)))
            except OSError:
                break
            if ack["MSA.F1"] == "AA":
                acknowledged.append(str(ack["MSA.F2"]))
        client.close()
    finally:
        process.kill()
        process.wait(10)
    assert len(acknowledged) >= 25
    restarted = _start(database_url, port, log)  # start-up recovery runs first
    try:
        with MllpClient(port) as client:
            assert ack_of(client.send(_message(500)))["MSA.F1"] == "AA"
        inbox = Inbox(database)
        processed = {m.control_id for m in inbox.list(PROCESSED, limit=10000)}
        assert set(acknowledged) <= processed
        assert inbox.list("received") == []
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(10)
        database.dispose()
