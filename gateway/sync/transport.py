"""Send one notification with httpx (async) and classify what happened."""

from __future__ import annotations

import logging
import time

import httpx

from gateway.sync.notifications import Outgoing
from gateway.sync.queue import Outcome
from gateway.sync.retry import ErrorKind, classify_status

log = logging.getLogger(__name__)


async def send(client: httpx.AsyncClient, outgoing: Outgoing, timeout: float) -> Outcome:
    """One attempt; never raises (every failure becomes an Outcome to record)."""
    return (await exchange(client, outgoing, timeout))[0]


async def exchange(client: httpx.AsyncClient, outgoing: Outgoing, timeout: float
                   ) -> tuple[Outcome, httpx.Response | None]:
    """One attempt and the response, if one came (FHIR writes read its ETag/Location)."""
    started, clock = time.time(), time.perf_counter()
    try:
        response = await client.request(outgoing.method, outgoing.url, content=outgoing.body,
                                         headers=outgoing.headers, timeout=timeout)
    except httpx.TimeoutException as error:
        return _failure(started, clock, outgoing, ErrorKind.TRANSPORT,
                        f"timed out after {timeout:g} s ({type(error).__name__})"), None
    except httpx.TransportError as error:
        return _failure(started, clock, outgoing, ErrorKind.TRANSPORT,
                        f"{type(error).__name__}: {error}"), None
    except Exception as error:  # our side (bad URL, TLS setup...): record it, retry long
        log.exception("sending %s %s failed", outgoing.method, outgoing.url)
        return _failure(started, clock, outgoing, ErrorKind.INTERNAL,
                        f"{type(error).__name__}: {error}"), None
    kind = classify_status(response.status_code)
    error = None if kind is None else f"HTTP {response.status_code}: {response.text[:200]}"
    return Outcome(started, _ms(clock), outgoing.url, response.status_code, error,
                   kind), response


def _failure(started: float, clock: float, outgoing: Outgoing, kind: ErrorKind,
             message: str) -> Outcome:
    return Outcome(started, _ms(clock), outgoing.url, None, message, kind)


def _ms(clock: float) -> float:
    return round((time.perf_counter() - clock) * 1000, 3)
