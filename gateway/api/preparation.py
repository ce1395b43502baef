"""Where request bodies are validated and indexed before their write: inline or in a pool of
worker processes.

Preparing a body (parse, validate, index rows) is pure CPU work, and one uvicorn worker runs
Python on one core at a time. ``GATEWAY_PREPARE_PROCESSES`` worker processes can take that
work so the server process only does HTTP and SQL; the pool receives the raw body and returns
a ``Prepared`` resource, which the Repository writes as is. Since validation is compiled
(``fhir/structure.py``) handing a body to another process costs more than preparing it, so
the default is 0 processes: the same function runs inline.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from gateway.store.prepare import Prepared, prepare_body

log = logging.getLogger(__name__)


class Preparer:
    """Prepares request bodies, in worker processes when there are any."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes (spawned: the server's threads are not forked)."""
        if self.processes > 0 and self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
            for _ in range(self.processes):  # import the models now, not on a request
                self._pool.submit(_warm_up).result()

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    async def prepare(self, raw: bytes, resource_type: str, base_url: str) -> Prepared:
        pool = self._pool
        if pool is None:
            return prepare_body(raw, resource_type, base_url)
        try:
            future = pool.submit(prepare_body, raw, resource_type, base_url)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            log.error("the preparation processes died; preparing inline from now on")
            self._pool = None
            return prepare_body(raw, resource_type, base_url)


def _warm_up() -> None:
    prepare_body(b'{"resourceType": "Basic", "code": {"text": "warm-up"}}', "Basic", "")
