"""Requests per client: a token bucket per client id, in each process (pure).

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; a request takes
one. When it is empty the caller answers 429 with Retry-After (RFC 6585 section 4) giving
the seconds until a token is back. Buckets that have refilled are forgotten once there are
many (``max_keys``), so keys an attacker makes up (user names at the login form) cannot grow
the table without bound: a full bucket and no bucket mean the same.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def waiting(self, key: str) -> int:
        """Like ``take`` without taking: the seconds until ``key`` may go ahead (0: now)."""
        return self._use(key, take=False)

    def take(self, key: str) -> int:
        """0 when the request may go ahead, else the seconds to wait (at least 1)."""
        return self._use(key, take=True)

    def _use(self, key: str, *, take: bool) -> int:
        if self.rate <= 0:
            return 0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if take:
                self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
                if len(self._buckets) > self.max_keys:
                    self._forget_full(now)
        return 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled by ``now`` (caller holds the lock)."""
        full = [key for key, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
