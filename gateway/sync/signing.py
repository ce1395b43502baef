"""Evidence headers on every notification (DESIGN.md rule 6).

* ``X-Gateway-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` -- HMAC-SHA256 over
  ``"<t>." + raw body`` with each active secret (two during a rotation), so a receiver can
  check integrity and freshness with whichever secret it knows. The same scheme as Stripe's
  and Svix's webhooks; ``X-Gateway-Timestamp`` repeats ``t``.
* ``traceparent`` (W3C Trace Context, https://www.w3.org/TR/trace-context/): the trace id is
  derived from the notification id, so every attempt of one notification shares a trace; the
  parent id is new per attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

SIGNATURE_HEADER = "X-Gateway-Signature"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secrets_in_use: list[str], timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers for one request body (none when no secret is configured)."""
    if not secrets_in_use:
        return {}
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}"
                                  for s in secrets_in_use[:2]]
    return {SIGNATURE_HEADER: ",".join(parts), TIMESTAMP_HEADER: str(timestamp)}


def verify(header: str, body: bytes, secret: str) -> bool:
    """Whether a signature header is valid for ``body`` under ``secret`` (receivers' side)."""
    fields = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    expected = signature(secret, int(stamps[0]), body)
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, _, value in fields)


def traceparent(notification_id: str) -> str:
    """A W3C traceparent whose trace id is stable for one notification."""
    trace_id = uuid.UUID(notification_id).hex
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"
