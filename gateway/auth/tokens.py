"""The token endpoint's checks and the gateway's own access tokens.

Client authentication follows SMART Backend Services (hl7.org/fhir/smart-app-launch/
backend-services.html, "Authenticating to the token endpoint") and RFC 7523 section 3: a
JWT signed RS384 or ES384 with a key from the client's registered JWKS, ``iss`` and ``sub``
the client id, ``aud`` the token endpoint URL, ``exp`` no more than five minutes ahead, a
``jti`` never seen before. Any failure answers ``invalid_client`` (RFC 7523 section 3.2);
other errors use the RFC 6749 section 5.2 codes. Access tokens are JWTs (ES384) signed by
the gateway's key, carrying the granted scopes, valid for a few minutes.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from gateway.auth.scopes import Scopes
from gateway.store.clients import Client, ClientRegistry

log = logging.getLogger("gateway.auth")

CLIENT_ALGORITHMS = ["RS384", "ES384"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 60


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def load_signing_key(pem: str | None, path: str | None) -> ECKey:
    """The gateway's token-signing key: from a file, else the setting, else a new one for
    this process only (tokens then die with it and other processes refuse them)."""
    if path or pem:
        key = ECKey.import_key(Path(path).read_text() if path else str(pem))
        key.ensure_kid()  # the JWK thumbprint (RFC 7638) when the PEM carries none
        return key
    log.warning("no GATEWAY_AUTH_SIGNING_KEY(_FILE) set: generated a throwaway token-signing "
                "key; tokens are valid in this process only and until it stops")
    return ECKey.generate_key("P-384", auto_kid=True)


@dataclass(frozen=True)
class Issued:
    """An access token and what it grants."""

    client: Client
    token: str
    scopes: Scopes
    expires_in: int

    def body(self) -> dict[str, Any]:
        return {"access_token": self.token, "token_type": "bearer",
                "expires_in": self.expires_in, "scope": str(self.scopes)}


class TokenService:
    """Authenticates clients by their assertions and issues and verifies access tokens."""

    def __init__(self, registry: ClientRegistry, key: ECKey, lifetime: int) -> None:
        self.registry = registry
        self.key = key
        self.lifetime = lifetime
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}

    # -- the token endpoint ---------------------------------------------------------------

    def issue(self, form: dict[str, str], token_url: str) -> Issued:
        """Check a client_credentials request with a client assertion; issue a token."""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials.")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}.")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is missing.")
        client, claims = self.authenticate(assertion, token_url)
        requested = form.get("scope", "").strip()
        if not requested:
            raise OAuthError("invalid_scope", "scope is required.")
        granted = Scopes.parse(client.scopes).granted(Scopes.parse(requested))
        if not granted:
            raise OAuthError("invalid_scope", "None of the requested scopes is allowed to "
                                              "this client.")
        if not self.registry.use_assertion(client.client_id, str(claims["jti"]),
                                           float(claims["exp"])):
            raise _invalid_client("This client assertion (jti) was used before.")
        return Issued(client, self._sign(client, granted), granted, self.lifetime)

    def authenticate(self, assertion: str, token_url: str) -> tuple[Client, dict[str, Any]]:
        """The client an assertion proves, and its claims (RFC 7523 section 3)."""
        client = self._client(unverified_issuer(assertion))
        try:
            token = jwt.decode(assertion, self._keys(client), algorithms=CLIENT_ALGORITHMS)
        except (JoseError, ValueError) as error:
            raise _invalid_client(f"The client assertion's signature does not verify "
                                  f"with the client's registered keys ({error}).") from None
        claims = token.claims
        _check_claims(claims, client.client_id, token_url)
        return client, claims

    def _client(self, client_id: str) -> Client:
        client = self.registry.get(client_id)
        if client is None or client.disabled:
            raise _invalid_client("Unknown or disabled client.")
        return client

    def _keys(self, client: Client) -> KeySet:
        jwks = client.jwks if client.jwks is not None else self._fetch(client.jwks_url or "")
        try:
            return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise _invalid_client("The client's registered JWKS cannot be read.") from None

    def _fetch(self, url: str) -> dict[str, Any]:
        """A client's published JWKS, kept five minutes (SMART: the server may cache it)."""
        cached = self._jwks_cache.get(url)
        if cached and cached[0] > time.time():
            return cached[1]
        try:
            response = httpx.get(url, timeout=5.0, follow_redirects=False)
            response.raise_for_status()
            jwks = response.json()
        except (httpx.HTTPError, ValueError):
            raise _invalid_client("The client's JWKS URL could not be fetched.") from None
        self._jwks_cache[url] = (time.time() + 300, jwks)
        return jwks

    # -- access tokens ----------------------------------------------------------------------

    def _sign(self, client: Client, scopes: Scopes) -> str:
        now = int(time.time())
        claims = {"iss": "fhir-care-gateway", "sub": client.client_id,
                  "client_id": client.client_id, "scope": str(scopes), "iat": now,
                  "exp": now + self.lifetime, "jti": uuid.uuid4().hex}
        return jwt.encode({"alg": "ES384", "kid": self.key.kid}, claims, self.key,
                          algorithms=["ES384"])

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired access token of ours; None otherwise."""
        try:
            claims = jwt.decode(token, self.key, algorithms=["ES384"]).claims
        except (JoseError, ValueError):
            return None
        if claims.get("iss") != "fhir-care-gateway":
            return None
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires <= time.time():
            return None
        return claims


def unverified_issuer(assertion: str) -> str:
    """``iss`` read before verification, only to find whose keys to verify with."""
    parts = assertion.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not a compact JWS")
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        raise _invalid_client("The client assertion is not a signed JWT.") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise _invalid_client("The client assertion has no iss.")
    return issuer


def _check_claims(claims: dict[str, Any], client_id: str, token_url: str) -> None:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _invalid_client("The client assertion's iss and sub must both be the client id.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if token_url not in audiences:
        raise _invalid_client(f"The client assertion's aud must be {token_url}.")
    expires = claims.get("exp")
    now = time.time()
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise _invalid_client("The client assertion has no numeric exp.")
    if expires <= now:
        raise _invalid_client("The client assertion has expired.")
    if expires > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise _invalid_client("The client assertion's exp is more than five minutes ahead.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _invalid_client("The client assertion has no jti.")
