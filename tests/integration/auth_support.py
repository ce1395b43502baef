"""Helpers for the authorization tests: a gateway with GATEWAY_AUTH=smart, registered
clients with their own keys, signed assertions and tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.store.clients import Client, ClientRegistry

TOKEN_URL = "http://testserver/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Registered:
    """A client registered with the gateway, holding its private key."""

    client_id: str
    key: Any
    alg: str

    def assertion(self, **overrides: Any) -> str:
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": TOKEN_URL,
                  "exp": int(time.time()) + 240, "jti": uuid.uuid4().hex}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": self.alg, "kid": self.key.kid}, claims, self.key,
                          algorithms=[self.alg])


def register(app: Any, client_id: str, scopes: str, *, organizations: tuple[str, ...] = (),
             admin: bool = False, alg: str = "ES384") -> Registered:
    key = (RSAKey.generate_key(2048, auto_kid=True) if alg == "RS384"
           else ECKey.generate_key("P-384", auto_kid=True))
    jwks = {"keys": [key.as_dict(private=False)]}
    ClientRegistry(app.state.database).add(Client(
        client_id, "", jwks, None, tuple(scopes.split()), organizations, admin, False))
    return Registered(client_id, key, alg)


def token_request(http: TestClient, assertion: str, scope: str = "system/*.cruds",
                  **extra: str) -> Any:
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": scope, **extra}
    return http.post("/auth/token", data=form)


def bearer(http: TestClient, client: Registered, scope: str = "system/*.cruds") -> dict[str, str]:
    """Authorization headers with a fresh token for ``client``."""
    response = token_request(http, client.assertion(), scope)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth_app(settings: Settings) -> Iterator[Any]:
    """A gateway with GATEWAY_AUTH=smart (no rate limit unless a test sets one)."""
    application = create_app(settings.model_copy(update={"auth": "smart",
                                                          "rate_limit_per_second": 0}))
    yield application
    application.state.database.dispose()


@pytest.fixture
def auth_http(auth_app: Any) -> Iterator[TestClient]:
    with TestClient(auth_app, base_url="http://testserver") as test_client:
        yield test_client
