"""The bare baseline: the fastest a FastAPI app can answer a FHIR read on this machine.

The benchmark compares the gateway against this app, served by the same uvicorn (uvloop +
httptools, same worker count) and driven by the same load generator with the same script. It
answers ``GET /fhir/CarePlan/{id}`` - the very path the read phase requests - with bytes held in
memory that are a real CarePlan body as the gateway stored it, so request and response sizes
match and the ratio gateway/baseline isolates what the gateway itself costs (routing,
validation, database, serialisation) from what any FastAPI service pays.

The body comes from the file named by ``BENCH_BASELINE_BODY`` (the benchmark writes it); without
it a CarePlan-sized placeholder of ``BENCH_BASELINE_BYTES`` bytes (default 1,000) is served.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

FHIR_JSON = "application/fhir+json"


def _body() -> bytes:
    path = os.environ.get("BENCH_BASELINE_BODY")
    if path:
        return Path(path).read_bytes()
    size = int(os.environ.get("BENCH_BASELINE_BYTES", "1000"))
    filler = "x" * max(0, size - len('{"resourceType":"CarePlan","text":""}'))
    return ('{"resourceType":"CarePlan","text":"' + filler + '"}').encode()


def create_app() -> FastAPI:
    """The app factory (``uvicorn --factory bench.baseline:create_app``); the body is read once
    per worker at start-up so a request does nothing but route and write bytes."""
    body = _body()
    app = FastAPI(title="bench baseline", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/fhir/CarePlan/{resource_id}")
    async def read(resource_id: str) -> Response:
        return Response(content=body, media_type=FHIR_JSON)

    return app
