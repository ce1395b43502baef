"""The retry policy is a pure function: (attempt, error, elapsed, rand) -> delay or give up."""

from __future__ import annotations

import pytest

from gateway.sync.retry import ErrorKind, RetryPolicy, classify_status

HOUR = 3600.0
POLICY = RetryPolicy(base=1.0, factor=2.0, max_delay=HOUR, jitter=0.5,
                     give_up_after=24 * HOUR, internal_give_up_after=7 * 24 * HOUR,
                     client_error_attempts=5)


@pytest.mark.parametrize(("attempt", "rand", "expected"), [
    (1, 0.0, 1.0),          # no jitter drawn: the base delay
    (2, 0.0, 2.0),          # doubles each attempt
    (5, 0.0, 16.0),
    (5, 1.0, 8.0),          # full jitter draw takes half off
    (5, 0.5, 12.0),
    (20, 0.0, HOUR),        # capped
    (200, 0.0, HOUR),       # no overflow for absurd attempt counts
])
def test_exponential_backoff_with_jitter(attempt: int, rand: float, expected: float) -> None:
    assert POLICY.next_delay(attempt, ErrorKind.SERVER, elapsed=0.0, rand=rand) == \
        pytest.approx(expected)


@pytest.mark.parametrize(("error", "attempt", "elapsed", "gives_up"), [
    (ErrorKind.TRANSPORT, 1, 0.0, False),
    (ErrorKind.TRANSPORT, 40, 23.9 * HOUR, False),     # still inside the 24 h window
    (ErrorKind.TRANSPORT, 40, 24 * HOUR, True),        # default give-up: 24 h
    (ErrorKind.SERVER, 3, 25 * HOUR, True),
    (ErrorKind.CLIENT, 4, 0.0, False),                 # a refused notification: a few tries
    (ErrorKind.CLIENT, 5, 0.0, True),                  # ...then given up (poison event)
    (ErrorKind.GONE, 1, 0.0, True),                    # 410: the endpoint is gone
    (ErrorKind.INTERNAL, 50, 3 * 24 * HOUR, False),    # our side: retried long
    (ErrorKind.INTERNAL, 50, 7 * 24 * HOUR, True),
])
def test_when_to_give_up(error: ErrorKind, attempt: int, elapsed: float,
                         gives_up: bool) -> None:
    delay = POLICY.next_delay(attempt, error, elapsed=elapsed, rand=0.3)
    assert (delay is None) is gives_up


def test_last_retry_lands_at_the_end_of_the_window() -> None:
    delay = POLICY.next_delay(30, ErrorKind.SERVER, elapsed=24 * HOUR - 10, rand=0.0)
    assert delay == pytest.approx(10.0)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        POLICY.next_delay(0, ErrorKind.SERVER, elapsed=0.0)


def test_same_inputs_same_answer() -> None:
    assert POLICY.next_delay(7, ErrorKind.TRANSPORT, 100.0, 0.42) == \
        POLICY.next_delay(7, ErrorKind.TRANSPORT, 100.0, 0.42)


@pytest.mark.parametrize(("status", "kind"), [
    (200, None), (202, None), (204, None),
    (301, ErrorKind.SERVER), (400, ErrorKind.CLIENT), (401, ErrorKind.CLIENT),
    (404, ErrorKind.CLIENT), (408, ErrorKind.SERVER), (410, ErrorKind.GONE),
    (422, ErrorKind.CLIENT), (429, ErrorKind.SERVER), (500, ErrorKind.SERVER),
    (503, ErrorKind.SERVER),
])
def test_http_status_classification(status: int, kind: ErrorKind | None) -> None:
    assert classify_status(status) == kind
