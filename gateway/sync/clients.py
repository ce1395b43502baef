"""HTTP clients of a delivery worker: one keep-alive httpx client per destination.

Why one per destination rather than one for everything: a destination's requests reuse its
own HTTP/1.1 keep-alive connections, at most ``connections`` of them, so a receiver that
hangs can only tie up its own connections; and httpcore's pool scans every connection it
holds for every request it assigns, so one pool serving a hundred busy destinations spends
more CPU on its bookkeeping than on the requests (measured: 2.5 ms of CPU per request with
100 connections in one pool against 0.8 ms with a pool each). All clients share one TLS
context (building one per client would load the CA bundle again each time).

A client nobody has used for ``idle_seconds`` is closed (``close_idle``), so destinations
that stopped receiving do not keep sockets open.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import httpx


@dataclass
class _Entry:
    client: httpx.AsyncClient
    used_at: float
    in_use: int = 0


class Clients:
    """The general client (partner pulls, token requests) and one client per destination
    (``sync_subscription.sid``). With a ``transport`` (tests) every use gets the one general
    client on it."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None,
                 connections: int = 8, idle_seconds: float = 300.0) -> None:
        self.transport = transport
        self.connections = connections
        self.idle_seconds = idle_seconds
        self._context: ssl.SSLContext | None = None
        self.general = httpx.AsyncClient(transport=transport, follow_redirects=False,
                                         verify=self._ssl())
        self._destinations: dict[int, _Entry] = {}
        self._last_sweep = time.monotonic()

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = httpx.create_ssl_context()
        return self._context

    def acquire(self, sid: int) -> httpx.AsyncClient:
        """The destination's client, kept open until ``release`` (calls nest)."""
        if self.transport is not None:
            return self.general
        entry = self._destinations.get(sid)
        if entry is None:
            limits = httpx.Limits(max_connections=self.connections,
                                  max_keepalive_connections=self.connections)
            entry = _Entry(httpx.AsyncClient(follow_redirects=False, limits=limits,
                                             verify=self._ssl()), time.monotonic())
            self._destinations[sid] = entry
        entry.in_use += 1
        return entry.client

    def release(self, sid: int) -> None:
        entry = self._destinations.get(sid)
        if entry is not None:
            entry.in_use -= 1
            entry.used_at = time.monotonic()

    async def close_idle(self, every: float = 60.0) -> int:
        """Close the clients of destinations idle for ``idle_seconds`` (looked at most once
        per ``every`` seconds); the number closed."""
        now = time.monotonic()
        if now - self._last_sweep < every:
            return 0
        self._last_sweep = now
        idle = [sid for sid, entry in self._destinations.items()
                if entry.in_use == 0 and now - entry.used_at > self.idle_seconds]
        for sid in idle:
            await self._destinations.pop(sid).client.aclose()
        return len(idle)

    async def aclose(self) -> None:
        entries, self._destinations = list(self._destinations.values()), {}
        for entry in entries:
            await entry.client.aclose()
        await self.general.aclose()
