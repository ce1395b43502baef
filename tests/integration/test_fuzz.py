"""Schema-driven and property-based fuzzing: no generated request gets a 5xx, and the MLLP
listener survives any bytes.

Schemathesis generates requests for every operation of the OpenAPI document (with
authorization off, and on with an administrator's token); Hypothesis generates FHIR-ish
JSON bodies, search queries, and HL7 v2 bytes (random and mutated samples, over MLLP and
HTTP). The budget per generator is ``GATEWAY_FUZZ_EXAMPLES`` (8 in CI; the README's
Security section gives the long run, over 2,000 requests)."""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest.mllp import frame
from gateway.ingest.setup import build_ingest
from tests.integration.auth_support import bearer, register
from tests.integration.hl7v2_helpers import Listener, ack_of, sample

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "8"))
BUDGET = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
TYPES = ["Patient", "CarePlan", "CareTeam", "Encounter", "Subscription", "Bundle", "Task"]
PARAMS = ["_id", "_count", "_sort", "_include", "_revinclude", "_summary", "_elements",
          "_lastUpdated", "_total", "patient", "subject", "status", "date", "identifier",
          "name", "code", "category", "care-team", "subject:Patient.name", "_has",
          "_cursor", "_tag", "participant", "class", "period", "name:exact", "_format"]


class Tally:
    """Counts answers by status and keeps every 5xx for the failure message."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []

    def add(self, status: int, what: str) -> None:
        self.statuses[status] += 1
        if status >= 500:
            self.errors.append(f"{status} {what}")

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def report(self, name: str) -> None:
        """One line per generator (shown with ``pytest -s``): the long run's evidence."""
        print(f"\nfuzz {name}: {self.total} requests, by status {dict(self.statuses)}")


def _openapi(app: Any, tally: Tally, headers: dict[str, str] | None = None) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()

        @BUDGET
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            tally.add(response.status_code, f"{case.method} {case.formatted_path}")

        run()


def test_openapi_operations_never_answer_5xx(app: Any, client: TestClient) -> None:
    tally = Tally()
    _openapi(app, tally)
    tally.report("openapi (auth off)")
    assert tally.total >= 34, tally.statuses
    assert tally.errors == []


def test_openapi_operations_with_authorization_on(auth_app: Any,
                                                  auth_http: TestClient) -> None:
    tally = Tally()
    headers = bearer(auth_http, register(auth_app, "fuzzer", "system/*.cruds", admin=True))
    _openapi(auth_app, tally, headers)
    _openapi(auth_app, tally, {"Authorization": "Bearer not-a-token"})
    tally.report("openapi (auth on)")
    assert tally.errors == []
    assert tally.statuses[401] > 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)
resources = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(TYPES)},
    optional={"id": st.text(max_size=70), "status": json_values, "subject": json_values,
              "entry": st.lists(st.dictionaries(
                  st.sampled_from(["resource", "request", "fullUrl"]), json_values),
                  max_size=3),
              "type": st.sampled_from(["transaction", "batch", "collection", "x"]),
              "meta": json_values, "criteria": st.text(max_size=40),
              "channel": json_values, "intent": json_values})


def _post_each(client: TestClient, tally: Tally, send: Callable[[Any], Any],
               strategy: Any) -> None:
    @BUDGET
    @given(value=strategy)
    def run(value: Any) -> None:
        method, url, response = send(value)
        tally.add(response.status_code, f"{method} {url} {value!r:.200}")

    run()


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/CarePlan", "/fhir",
                                  "/fhir/$process-message", "/ingest/careplan"])
def test_generated_bodies_never_answer_5xx(client: TestClient, path: str) -> None:
    tally = Tally()

    def send(value: Any) -> tuple[str, str, Any]:
        return "POST", path, client.post(path, json=value)

    _post_each(client, tally, send, resources | json_values)
    tally.report(f"bodies {path}")
    assert tally.errors == []


def test_generated_searches_never_answer_5xx(client: TestClient) -> None:
    tally = Tally()
    queries = st.tuples(st.sampled_from(TYPES), st.lists(st.tuples(
        st.sampled_from(PARAMS) | st.text(max_size=10), st.text(max_size=30)), max_size=5))

    def send(value: Any) -> tuple[str, str, Any]:
        resource_type, params = value
        return "GET", resource_type, client.get(f"/fhir/{resource_type}", params=params)

    _post_each(client, tally, send, queries)
    tally.report("searches")
    assert tally.errors == []


def _mutated(message: bytes) -> Any:
    """A sample message with a slice replaced by generated bytes."""
    return st.tuples(st.integers(0, len(message)), st.integers(0, 40),
                     st.binary(max_size=40)).map(
        lambda t: message[:t[0]] + t[2] + message[t[0] + t[1]:])


def test_generated_hl7v2_bytes_never_crash_the_listener(app: Any, client: TestClient) -> None:
    samples = [sample(n) for n in ("north_a01_v25", "north_a03_v25", "south_a04_v23")]
    payloads = st.binary(max_size=300) | st.sampled_from(samples).flatmap(_mutated)
    tally = Tally()
    ingest = build_ingest(app.state.settings, app.state.database, app.state.fhir)
    with Listener(ingest) as listener:

        @BUDGET
        @given(payload=payloads, framed=st.booleans())
        def run(payload: bytes, framed: bool) -> None:
            with socket.create_connection(("127.0.0.1", listener.server.port), 10) as sock:
                sock.sendall(frame(payload) if framed else payload)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            answer = client.post("/hl7v2", content=payload,
                                 headers={"Content-Type": "x-application/hl7-v2+er7"})
            tally.add(answer.status_code, f"POST /hl7v2 {payload!r:.200}")

        run()
        with listener.connect() as sender:  # still up and answering
            assert ack_of(sender.send(samples[0]))["MSA"][0][1][0] in ("AA", "AE")
    tally.report("hl7v2 (each also sent over MLLP)")
    assert tally.errors == []
