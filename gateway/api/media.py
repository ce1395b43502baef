"""Content negotiation for the FHIR API (http://hl7.org/fhir/R4/http.html#mime-type).

JSON only: ``application/fhir+json`` (and ``application/json``, ``_format=json``). A request
that asks only for XML gets 406; an XML body gets 415; both with an OperationOutcome.
"""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json; charset=utf-8"
_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_XML_FORMATS = {"xml", "text/xml", "application/xml", "application/fhir+xml",
                "application/xml+fhir", "html", "text/html", "ttl", "text/turtle"}


def check_accept(request: Request) -> None:
    requested = request.query_params.get("_format")
    if requested is not None:
        if requested.split(";")[0].strip() not in _JSON_FORMATS:
            raise NotAcceptable(f"_format={requested} is not supported; this server speaks "
                                "application/fhir+json only.", expression=["_format"])
        return
    accept = request.headers.get("accept")
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
