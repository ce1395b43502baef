"""Shared helpers of the HL7 v2 integration tests: sample messages, a real MLLP listener on
127.0.0.1, an MLLP client, and FHIR reads of what the messages produced."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import hl7
from fastapi.testclient import TestClient

from gateway.ingest.mllp import MllpServer, frame
from gateway.ingest.service import InboundService
from gateway.ingest.setup import mllp_handler

SAMPLES = Path(__file__).parents[1] / "data" / "hl7v2"
NORTH_VISIT = "urn:hl7v2:authority:NORTH|V20240001"
SSN = "http://hl7.org/fhir/sid/us-ssn|123-45-6789"


def sample(name: str, replace: dict[str, str] | None = None) -> bytes:
    """A sample message as sent on the wire (CR segment terminators), with text replaced."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return "\r".join(line for line in text.splitlines() if line).encode() + b"\r"


def ack_of(payload: bytes | str) -> Any:
    text = payload.decode() if isinstance(payload, bytes) else payload
    return hl7.parse(text.strip("\r"))


class Listener:
    """The MLLP server on a free port in a thread of its own (its own event loop)."""

    def __init__(self, ingest: InboundService) -> None:
        self.server = MllpServer(mllp_handler(ingest), "127.0.0.1", 0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def connect(self) -> MllpClient:
        return MllpClient(self.server.port)


class MllpClient:
    """A blocking MLLP sender: one frame out, one framed ACK back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_ack(self) -> bytes:
        while b"\x1c\x0d" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before an ACK arrived")
            self.buffer += chunk
        end = self.buffer.index(b"\x1c\x0d")
        payload, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        assert payload.startswith(b"\x0b")
        return payload[1:]

    def send(self, message: bytes) -> bytes:
        self.send_raw(frame(message))
        return self.read_ack()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def post(client: TestClient, message: bytes, content_type: str = "x-application/hl7-v2+er7"
         ) -> Any:
    return client.post("/hl7v2", content=message, headers={"Content-Type": content_type})


def search(client: TestClient, resource_type: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/fhir/{resource_type}", params=params)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])
            if e.get("search", {}).get("mode") == "match"]


def encounter(client: TestClient, identifier: str = NORTH_VISIT) -> dict[str, Any]:
    found = search(client, "Encounter", identifier=identifier)
    assert len(found) == 1, found
    return found[0]


def read(client: TestClient, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.text
    return response.json()
