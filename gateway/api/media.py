"""Content negotiation for the FHIR API (http://hl7.org/fhir/R4/http.html#mime-type).

JSON only: ``application/fhir+json`` (and ``application/json``, ``_format=json``). A request
that asks only for XML gets 406; an XML body gets 415; both with an OperationOutcome.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import GatewayError, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json; charset=utf-8"
_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_XML_FORMATS = {"xml", "text/xml", "application/xml", "application/fhir+xml",
                "application/xml+fhir", "html", "text/html", "ttl", "text/turtle"}


class ContentNegotiation:
    """Answers 406 to FHIR requests that accept no JSON, before any routing or work.

    A pure ASGI middleware rather than a route dependency: it runs on every FHIR request,
    and FastAPI's dependency resolution costs more than the check itself.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/fhir") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            try:
                check_accept(_format_of(scope), _header(scope, b"accept"))
            except GatewayError as error:
                await _send_outcome(error, send)
                return
        await self.app(scope, receive, send)


def _format_of(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if b"_format" not in query:
        return None
    return dict(parse_qsl(query.decode("latin-1"))).get("_format")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_outcome(error: GatewayError, send: Send) -> None:
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": error.issues()})
    await send({"type": "http.response.start", "status": error.status, "headers": [
        (b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def check_accept(requested: str | None, accept: str | None) -> None:
    """Refuse (406) a ``_format`` or an Accept header that admits no JSON."""
    if requested is not None:
        if requested.split(";")[0].strip() not in _JSON_FORMATS:
            raise NotAcceptable(f"_format={requested} is not supported; this server speaks "
                                "application/fhir+json only.", expression=["_format"])
        return
    if not accept:
        return
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(t in _JSON_FORMATS or t in ("*/*", "application/*") or t.endswith("+json")
           for t in types):
        return
    raise NotAcceptable(f"Cannot produce {accept!r}; this server speaks application/fhir+json "
                        "only.")


def check_content_type(request: Request, *, form: bool = False) -> None:
    """JSON bodies only; ``form`` also admits the form encoding of ``POST _search``."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return
    media = content_type.split(";")[0].strip().lower()
    if form and media == "application/x-www-form-urlencoded":
        return
    if media in _JSON_FORMATS or media.endswith("+json"):
        return
    raise UnsupportedMediaType(f"Content-Type {content_type!r} is not supported; send "
                               "application/fhir+json.")
