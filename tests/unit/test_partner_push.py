"""Partner writes on the wire (respx): OAuth2 client-credentials tokens fetched, cached and
renewed; what each answer of the partner means (copy remembered, conflict, retry)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import respx

from gateway.sync import remote
from gateway.sync.notifications import Outgoing
from gateway.sync.partner_auth import AuthError, Credentials, TokenCache
from gateway.sync.push import Write, copy_of, send_write
from gateway.sync.queue import Job, Outcome
from gateway.sync.retry import ErrorKind

BASE = "https://ehr.example.org/fhir"
TOKEN_URL = "https://auth.example.org/token"
URL = f"{BASE}/CarePlan?identifier=urn%3Agw%7CCarePlan%2Fp1"
OAUTH = Credentials("oauth2", token_url=TOKEN_URL, client_id="gateway",
                    client_secret="s3cret", scope="system/*.write")
T = TypeVar("T")


def _run(make: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with httpx.AsyncClient() as client:
            return await make(client)
    return asyncio.run(run())


def _write(credentials: Credentials | None = OAUTH, expected: str | None = "4") -> Write:
    job = Job(delivery_id=9, sid=3, kind="event", notification_id="n-1", attempt=1,
              first_failure_at=None, subscription_id="ehr", subscription_version=0,
              endpoint=BASE, payload="application/fhir+json", headers=[],
              resource_type="CarePlan", resource_id="p1", version_id=5, action="update",
              body=b"{}", content="rest-write")
    return Write(job, 17, Outgoing("PUT", URL, b'{"resourceType":"CarePlan"}', {}),
                 "remote-1" if expected else None, expected, credentials)


def _token(token: str = "tok-1", expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "token_type": "bearer",
                                     "expires_in": expires_in})


@respx.mock
def test_oauth2_token_is_fetched_with_client_credentials_and_cached() -> None:
    token = respx.post(TOKEN_URL).mock(return_value=_token())
    put = respx.put(URL).mock(return_value=httpx.Response(200, headers={"ETag": 'W/"5"'}))
    tokens = TokenCache()
    for _ in range(2):
        assert _run(lambda c: send_write(c, _write(), tokens, 5.0)).ok
    assert token.call_count == 1 and put.call_count == 2
    request = token.calls[0].request
    assert request.headers["Authorization"] == \
        "Basic " + base64.b64encode(b"gateway:s3cret").decode()
    assert dict(httpx.QueryParams(request.content.decode())) == {
        "grant_type": "client_credentials", "scope": "system/*.write"}
    assert put.calls[0].request.headers["Authorization"] == "Bearer tok-1"


@respx.mock
def test_expired_and_refused_tokens_are_fetched_again() -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[_token("short", 10), _token("t2"),
                                                    _token("t3")])
    put = respx.put(URL).mock(side_effect=[httpx.Response(200), httpx.Response(401),
                                           httpx.Response(200)])
    tokens = TokenCache()
    assert _run(lambda c: send_write(c, _write(), tokens, 5.0)).ok  # "short" expires at once
    refused = _run(lambda c: send_write(c, _write(), tokens, 5.0))
    assert (refused.http_status, refused.kind) == (401, ErrorKind.CLIENT)
    assert _run(lambda c: send_write(c, _write(), tokens, 5.0)).ok
    assert token.call_count == 3
    assert [c.request.headers["Authorization"] for c in put.calls] == \
        ["Bearer short", "Bearer t2", "Bearer t3"]


@pytest.mark.parametrize(("answer", "kind"), [
    (httpx.Response(401, json={"error": "invalid_client"}), ErrorKind.CLIENT),
    (httpx.Response(503), ErrorKind.SERVER),
    (httpx.Response(200, json={"token_type": "bearer"}), ErrorKind.SERVER),
    (httpx.ConnectError("refused"), ErrorKind.TRANSPORT),
])
@respx.mock
def test_token_endpoint_failures_are_classified(answer: Any, kind: ErrorKind) -> None:
    respx.post(TOKEN_URL).mock(side_effect=[answer])
    put = respx.put(URL)
    outcome = _run(lambda c: send_write(c, _write(), TokenCache(), 5.0))
    assert outcome.kind is kind and "token endpoint" in (outcome.error or "")
    assert put.call_count == 0
    with pytest.raises(AuthError):
        respx.post(TOKEN_URL).mock(side_effect=[answer])
        _run(lambda c: TokenCache().token(c, OAUTH))


@pytest.mark.parametrize(("status", "kind", "records"), [
    (412, ErrorKind.CONFLICT, "conflict"),
    (409, ErrorKind.CONFLICT, "conflict"),
    (422, ErrorKind.CLIENT, None),
    (500, ErrorKind.SERVER, None),
    (429, ErrorKind.SERVER, None),
])
@respx.mock
def test_partner_answers_are_classified(status: int, kind: ErrorKind,
                                        records: str | None) -> None:
    put = respx.put(URL).mock(return_value=httpx.Response(status, text="version moved on"))
    outcome: Outcome = _run(lambda c: send_write(
        c, _write(Credentials("bearer", token="fixed")), TokenCache(), 5.0))
    assert outcome.kind is kind and outcome.http_status == status
    assert (outcome.after is not None) == (records is not None)
    assert put.calls[0].request.headers["Authorization"] == "Bearer fixed"
    if records:
        assert outcome.error and outcome.error.startswith("conflict: HTTP")


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({"Location": f"{BASE}/CarePlan/r9/_history/2", "ETag": 'W/"2"'}, None, ("r9", "2")),
    ({"ETag": 'W/"7"'}, None, ("known", "7")),
    ({}, {"resourceType": "CarePlan", "id": "r3", "meta": {"versionId": "4"}}, ("r3", "4")),
])
def test_the_partners_copy_is_read_from_the_answer(headers: dict[str, str],
                                                   body: dict[str, Any] | None,
                                                   expected: tuple[str, str]) -> None:
    response = httpx.Response(200, headers=headers, json=body)
    assert copy_of(response, None if body else "known") == expected


def test_references_leave_as_identifiers_and_come_back_as_local_references() -> None:
    plan = {"resourceType": "CarePlan", "id": "p1", "meta": {"versionId": "3"},
            "status": "active", "intent": "plan",
            "subject": {"reference": "Patient/a", "display": "Ada"},
            "author": {"reference": "Organization/o"},
            "careTeam": [{"reference": "CareTeam/gone"}]}
    business = {"Organization/o": {"system": "urn:npi", "value": "123"}}

    def identifier_of(kind: str, local: str) -> dict[str, str] | None:
        if local == "gone":
            return None
        return business.get(f"{kind}/{local}") or remote.own_identifier("urn:gw", kind, local)

    out = remote.outbound(plan, "urn:gw", identifier_of)
    assert out["meta"] == {"source": "urn:gw/CarePlan/p1"} and "id" not in out
    assert out["identifier"] == [{"system": "urn:gw", "value": "CarePlan/p1"}]
    assert out["subject"] == {"type": "Patient", "display": "Ada",
                              "identifier": {"system": "urn:gw", "value": "Patient/a"}}
    assert out["author"] == {"type": "Organization", "identifier": business["Organization/o"]}
    assert out["careTeam"] == [{"reference": "CareTeam/gone"}]
    def find_local(kind: str, ident: dict[str, Any]) -> str | None:
        own = remote.own_local_id(ident, "urn:gw", kind)
        return own or ("o" if ident.get("value") == "123" else None)

    back = remote.inbound(dict(out, id="r1"), "urn:gw", find_local, lambda kind, rid: None)
    assert back["subject"] == {"reference": "Patient/a", "display": "Ada"}
    assert back["author"] == {"reference": "Organization/o"}
    assert back["careTeam"] == [{"type": "CareTeam", "display": "CareTeam/gone at the partner"}]
    assert "identifier" not in back and "meta" not in back and "id" not in back
