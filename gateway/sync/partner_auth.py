"""Credentials for writing into and reading from partner FHIR servers.

``none``; ``bearer`` (a fixed token, RFC 6750); ``oauth2``: the client credentials grant
(RFC 6749 section 4.4; SMART Backend Services uses the same grant), the client
authenticating with HTTP Basic (section 2.3.1). Tokens are cached until shortly before
``expires_in`` runs out and dropped when the partner answers 401, so the next attempt fetches
a fresh one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from gateway.sync.retry import ErrorKind, classify_status

AUTH_KINDS = ("none", "bearer", "oauth2")
_MARGIN = 30.0  # seconds before expiry a cached token is renewed
_DEFAULT_LIFETIME = 300.0  # when the token endpoint does not say


@dataclass(frozen=True)
class Credentials:
    kind: str = "none"
    token: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None


class AuthError(Exception):
    """A token could not be obtained; ``kind`` says how to retry (retry.py)."""

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class TokenCache:
    """OAuth2 access tokens by (token URL, client id, scope)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    async def headers(self, client: httpx.AsyncClient, credentials: Credentials | None,
                      timeout: float = 10.0) -> dict[str, str]:
        """The Authorization header for a request (none for ``none``)."""
        if credentials is None or credentials.kind == "none":
            return {}
        if credentials.kind == "bearer":
            return {"Authorization": f"Bearer {credentials.token or ''}"}
        return {"Authorization": f"Bearer {await self.token(client, credentials, timeout)}"}

    async def token(self, client: httpx.AsyncClient, credentials: Credentials,
                    timeout: float = 10.0) -> str:
        key = _key(credentials)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        token, lifetime = await _fetch(client, credentials, timeout)
        self._tokens[key] = (token, time.time() + max(0.0, lifetime - _MARGIN))
        return token

    def forget(self, credentials: Credentials | None) -> None:
        """Drop a token the partner refused (401)."""
        if credentials is not None and credentials.kind == "oauth2":
            self._tokens.pop(_key(credentials), None)


def _key(credentials: Credentials) -> tuple[str, str, str]:
    return (credentials.token_url or "", credentials.client_id or "", credentials.scope or "")


async def _fetch(client: httpx.AsyncClient, credentials: Credentials,
                 timeout: float) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if credentials.scope:
        form["scope"] = credentials.scope
    try:
        response = await client.post(
            credentials.token_url or "", data=form, timeout=timeout,
            auth=(credentials.client_id or "", credentials.client_secret or ""),
            headers={"Accept": "application/json"})
    except httpx.TransportError as error:
        raise AuthError(f"token endpoint unreachable: {type(error).__name__}: {error}",
                        ErrorKind.TRANSPORT) from error
    kind = classify_status(response.status_code)
    if kind is not None:
        raise AuthError(f"token endpoint answered HTTP {response.status_code}: "
                        f"{response.text[:200]}", kind, response.status_code)
    try:
        body = response.json()
        token = str(body["access_token"])
    except (ValueError, KeyError, TypeError):
        raise AuthError("token endpoint answered without an access_token",
                        ErrorKind.SERVER, response.status_code) from None
    lifetime = body.get("expires_in")
    return token, float(lifetime) if isinstance(lifetime, int | float) else _DEFAULT_LIFETIME
