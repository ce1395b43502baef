"""Signed cookie values for people's sessions and the login form's CSRF token.

A value is ``<random secret>.<HMAC-SHA256 of it>`` (base64url): a cookie not made by this
gateway is refused before any database lookup, and the secret itself only finds a session
whose SHA-256 is stored (store/users.py). The key comes from GATEWAY_SESSION_SECRET(_FILE);
without one a random key lives as long as the process (announced at start-up).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from pathlib import Path

log = logging.getLogger("gateway.security")
MIN_KEY = 32


def load_session_key(value: str | None, path: str | None) -> bytes:
    """The signing key from a file or the environment, else a random one (with a warning)."""
    text = Path(path).read_text().strip() if path else value
    if text:
        if len(text) < MIN_KEY:
            raise ValueError(f"GATEWAY_SESSION_SECRET must have at least {MIN_KEY} characters")
        return text.encode()
    log.warning("No GATEWAY_SESSION_SECRET(_FILE): sessions are signed with a random key "
                "and end when this process stops.")
    return secrets.token_bytes(32)


class Signer:
    """Makes and checks signed random values."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, secret: str) -> str:
        digest = hmac.new(self.key, secret.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def new(self) -> tuple[str, str]:
        """(secret, signed cookie value)."""
        secret = secrets.token_urlsafe(32)
        return secret, f"{secret}.{self._mac(secret)}"

    def unsign(self, value: str | None) -> str | None:
        """The secret of a value this signer made, else None."""
        secret, _, mac = (value or "").partition(".")
        if not secret or not mac or len(value or "") > 256:
            return None
        return secret if hmac.compare_digest(mac, self._mac(secret)) else None
