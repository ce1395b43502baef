"""SMART Backend Services: discovery, the token endpoint's checks of client assertions
(backend-services.html; RFC 7523 section 3; RFC 6749 section 5.2), and bearer tokens on the
API (RFC 6750)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from gateway.store.clients import ClientRegistry
from tests.integration.auth_support import (
    TOKEN_URL,
    Registered,
    bearer,
    register,
    token_request,
)


def test_discovery_names_the_token_endpoint(auth_http: TestClient) -> None:
    config = auth_http.get("/fhir/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == TOKEN_URL
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert auth_http.get("/fhir/metadata").status_code == 200  # public


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_correctly_signed_assertion_gets_a_working_token(auth_app: Any,
                                                           auth_http: TestClient,
                                                           alg: str) -> None:
    client = register(auth_app, "ehr-1", "system/Patient.cruds", alg=alg)
    response = token_request(auth_http, client.assertion(), "system/Patient.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == "system/Patient.rs"
    assert 0 < body["expires_in"] <= 300
    assert response.headers["cache-control"] == "no-store"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert auth_http.get("/fhir/Patient", headers=headers).status_code == 200


def test_granted_scopes_are_cut_to_what_the_client_is_allowed(auth_app: Any,
                                                             auth_http: TestClient) -> None:
    client = register(auth_app, "ehr-1", "system/CarePlan.rs system/Encounter.read")
    response = token_request(auth_http, client.assertion(),
                             "system/*.cruds system/Patient.rs")
    assert response.status_code == 200
    granted = set(response.json()["scope"].split())
    assert granted == {"system/CarePlan.rs", "system/Encounter.rs"}


def _refused(response: Any, error: str, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    return str(body["error_description"])


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"exp": int(time.time()) - 10}, "expired"),
    ({"exp": int(time.time()) + 3600}, "five minutes"),
    ({"aud": "http://testserver/fhir"}, "aud"),
    ({"sub": "someone-else"}, "iss and sub"),
    ({"jti": None}, "jti"),
    ({"exp": None}, "exp"),
])
def test_bad_claims_are_refused_as_invalid_client(auth_app: Any, auth_http: TestClient,
                                                  overrides: dict[str, Any],
                                                  fragment: str) -> None:
    client = register(auth_app, "ehr-1", "system/*.rs")
    response = token_request(auth_http, client.assertion(**overrides))
    assert fragment in _refused(response, "invalid_client", 401)


def test_a_replayed_assertion_is_refused_even_after_a_restart(auth_app: Any,
                                                             auth_http: TestClient,
                                                             settings: Any) -> None:
    client = register(auth_app, "ehr-1", "system/*.rs")
    assertion = client.assertion()
    assert token_request(auth_http, assertion, "system/*.rs").status_code == 200
    assert "used before" in _refused(token_request(auth_http, assertion, "system/*.rs"),
                                     "invalid_client", 401)
    # A second gateway process on the same database refuses it too.
    from gateway.api.app import create_app

    other = create_app(settings.model_copy(update={"auth": "smart"}))
    try:
        with TestClient(other, base_url="http://testserver") as second:
            _refused(token_request(second, assertion, "system/*.rs"), "invalid_client", 401)
    finally:
        other.state.database.dispose()


def test_a_wrongly_signed_assertion_is_refused(auth_app: Any, auth_http: TestClient) -> None:
    client = register(auth_app, "ehr-1", "system/*.rs")
    impostor = Registered("ehr-1", ECKey.generate_key("P-384", auto_kid=True), "ES384")
    _refused(token_request(auth_http, impostor.assertion()), "invalid_client", 401)
    forged = client.assertion()
    head, payload, signature = forged.split(".")
    tampered = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
    _refused(token_request(auth_http, f"{tampered}.{signature}"), "invalid_client", 401)


def test_unsupported_algorithms_and_unknown_or_disabled_clients_are_refused(
        auth_app: Any, auth_http: TestClient) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    register(auth_app, "ehr-1", "system/*.rs")
    secret = OctKey.import_key("x" * 32)
    hs = jwt.encode({"alg": "HS256"}, {"iss": "ehr-1", "sub": "ehr-1", "aud": TOKEN_URL,
                                       "exp": int(time.time()) + 60, "jti": "1"}, secret)
    _refused(token_request(auth_http, hs), "invalid_client", 401)
    stranger = Registered("nobody", ECKey.generate_key("P-384", auto_kid=True), "ES384")
    _refused(token_request(auth_http, stranger.assertion()), "invalid_client", 401)
    _refused(token_request(auth_http, "not-a-jwt"), "invalid_client", 401)
    client = register(auth_app, "ehr-2", "system/*.rs")
    ClientRegistry(auth_app.state.database).set_disabled("ehr-2")
    _refused(token_request(auth_http, client.assertion()), "invalid_client", 401)


def test_request_errors_use_the_rfc_6749_codes(auth_app: Any, auth_http: TestClient) -> None:
    client = register(auth_app, "ehr-1", "system/CarePlan.rs")
    _refused(token_request(auth_http, client.assertion(), grant_type="password"),
             "unsupported_grant_type", 400)
    _refused(token_request(auth_http, client.assertion(), client_assertion_type="x"),
             "invalid_request", 400)
    _refused(token_request(auth_http, client.assertion(), "system/Patient.rs"),
             "invalid_scope", 400)
    _refused(token_request(auth_http, client.assertion(), ""), "invalid_scope", 400)


def test_the_api_needs_a_valid_token(auth_app: Any, auth_http: TestClient) -> None:
    missing = auth_http.get("/fhir/Patient")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["resourceType"] == "OperationOutcome"
    garbage = auth_http.get("/fhir/Patient", headers={"Authorization": "Bearer abc.def.ghi"})
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    for path in ("/hl7v2/messages", "/sync/deliveries"):
        assert auth_http.get(path).status_code == 401


def test_a_disabled_clients_tokens_stop_working(auth_app: Any, auth_http: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client = register(auth_app, "ehr-1", "system/*.rs")
    headers = bearer(auth_http, client, "system/*.rs")
    assert auth_http.get("/fhir/Patient", headers=headers).status_code == 200
    ClientRegistry(auth_app.state.database).set_disabled("ehr-1")
    clock = time.monotonic() + 10  # past the few seconds a client lookup is remembered
    monkeypatch.setattr("gateway.api.security.time.monotonic", lambda: clock)
    assert auth_http.get("/fhir/Patient", headers=headers).status_code == 401
