"""The retry policy: a pure function of (attempt, error) -> delay before the next try, or None
to give up (DESIGN.md rule 5, after procrastinate's ``retry.py``).

Failures are classified so that each kind is retried as long as it deserves:

* ``transport`` (refused, reset, timed out) and ``server`` (5xx, 408, 429): the receiver is
  down or overloaded; retry with exponential backoff and jitter until ``give_up_after``
  seconds have passed since the first failure (default 24 h), then the destination is marked
  in error. Subscribers commonly lose webhooks to servers that stop after a minute or two.
* ``client`` (other 4xx): the receiver refuses this notification; a few attempts, then the
  notification is given up so one poison event never blocks the queue behind it.
* ``gone`` (410): the receiver says the endpoint no longer exists; give up at once.
* ``conflict`` (412/409 to a FHIR write into a partner, http.html#concurrency): the
  partner's copy moved on; give up at once (the write is recorded as a conflict, never
  forced), without tripping the destination's circuit.
* ``internal``: the gateway failed to build or send the notification; retry long
  (``internal_give_up_after``, default 7 days) - the fault is ours to fix, not the subscriber's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSPORT = "transport"
    SERVER = "server"
    CLIENT = "client"
    GONE = "gone"
    CONFLICT = "conflict"
    INTERNAL = "internal"


def classify_status(status: int) -> ErrorKind | None:
    """The kind of failure an HTTP status means (None for success, any 2xx)."""
    if 200 <= status < 300:
        return None
    if status == 410:
        return ErrorKind.GONE
    if status in (408, 429) or status >= 500:
        return ErrorKind.SERVER
    if 400 <= status < 500:
        return ErrorKind.CLIENT
    return ErrorKind.SERVER  # 1xx/3xx: not an acknowledgement; try again later


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; all times in seconds."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.5
    give_up_after: float = 24 * 3600.0
    internal_give_up_after: float = 7 * 24 * 3600.0
    client_error_attempts: int = 5

    def next_delay(self, attempt: int, error: ErrorKind, elapsed: float,
                   rand: float = 0.5) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        ``attempt`` counts the attempts made so far (1 after the first failure), ``elapsed``
        the seconds since the first failure, ``rand`` a uniform number in [0, 1) (passed in,
        so the function stays pure and testable).
        """
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        if error in (ErrorKind.GONE, ErrorKind.CONFLICT):
            return None
        if error is ErrorKind.CLIENT and attempt >= self.client_error_attempts:
            return None
        window = self.internal_give_up_after if error is ErrorKind.INTERNAL \
            else self.give_up_after
        if elapsed >= window:
            return None
        delay = min(self.max_delay, self.base * self.factor ** (attempt - 1))
        delay *= 1 - self.jitter * rand  # jitter spreads retries of many deliveries apart
        return min(delay, max(0.0, window - elapsed))
