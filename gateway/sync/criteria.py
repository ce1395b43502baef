"""Subscriptions the gateway accepts, checked when one is written: classic R4 criteria
Subscriptions, and topic-based ones (Subscriptions R5 Backport IG, R4 profile).

A Subscription (http://hl7.org/fhir/R4/subscription.html) is refused at create/update time
when the gateway could not honour it (another channel type, a payload type it cannot send, a
criteria it cannot evaluate), instead of being accepted and then silently ignored. The
criteria is parsed once by the same ``parse_search`` that serves ``GET /fhir/{type}?...``;
the router later evaluates that very ``SearchRequest`` (store/query.py) against each change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.errors import GatewayError, UnprocessableResource
from gateway.fhir.types import is_resource_type
from gateway.search.request import SearchRequest, parse_search
from gateway.sync.careteam import parse_endpoint
from gateway.sync.topics import TOPICS

#: R4 Subscription.channel.payload values the gateway can send (a FHIR JSON resource).
JSON_PAYLOADS = ("application/fhir+json", "application/json")
#: Search-result parameters that mean nothing for matching one resource.
_RESULT_PARAMS = ("_count", "_sort", "_summary", "_elements", "_include", "_revinclude",
                  "_total", "_format", "_pretty", "_cursor", "_contained", "_containedType")
#: Statuses a client may create a Subscription with (subscription.html#2.46.7.1: the server
#: moves ``requested`` to ``active`` or ``error``).
CREATE_STATUSES = ("requested", "off")
STATUSES = ("requested", "active", "error", "off")
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER = BACKPORT + "backport-filter-criteria"
CONTENT = BACKPORT + "backport-payload-content"
CHANNEL_EXTENSIONS = {BACKPORT + "backport-heartbeat-period": "valueUnsignedInt",
                      BACKPORT + "backport-timeout": "valueUnsignedInt",
                      BACKPORT + "backport-max-count": "valuePositiveInt"}
CONTENTS = ("empty", "id-only", "full-resource")


@dataclass(frozen=True)
class SubscriptionSpec:
    """What the router and the workers need from one Subscription resource."""

    status: str
    criteria: str
    resource_type: str
    endpoint: str
    payload: str | None
    headers: tuple[tuple[str, str], ...]
    topic: str | None = None
    content: str | None = None
    heartbeat_seconds: int | None = None
    timeout_seconds: int | None = None


class UnsupportedSubscription(UnprocessableResource):
    """A Subscription the gateway cannot honour (422, naming the element at fault)."""

    code = "not-supported"


def _fail(message: str, element: str, prefix: str) -> GatewayError:
    """422 naming the element at fault (``Subscription.x`` or ``Bundle.entry[i].resource.x``)."""
    return UnsupportedSubscription(message, expression=[f"{prefix}{element}"])


def parse_criteria(criteria: str, base_url: str = "", prefix: str = "Subscription."
                   ) -> SearchRequest:
    """``Type?param=value&...`` parsed strictly into the API's ``SearchRequest``."""
    resource_type, _, query = criteria.strip().partition("?")
    if not is_resource_type(resource_type):
        raise _fail(f"The criteria {criteria!r} must start with a FHIR resource type "
                    "('Type?param=value').", "criteria", prefix)
    if resource_type == "Subscription":
        raise _fail("Subscriptions on Subscription resources are not supported.",
                    "criteria", prefix)
    params = parse_qsl(query, keep_blank_values=True)
    for name, _ in params:
        if name.split(":")[0] in _RESULT_PARAMS:
            raise _fail(f"The criteria parameter {name!r} selects search results, not "
                        "resources; it cannot be used in a criteria.", "criteria", prefix)
    try:
        return parse_search(resource_type, params, base_url=base_url, strict=True)
    except GatewayError as error:
        raise _fail(f"The criteria {criteria!r} cannot be evaluated: {error.message}",
                    "criteria", prefix) from error


def parse_subscription(resource: dict[str, Any], *, creating: bool = False,
                       base_url: str = "", prefix: str = "Subscription.") -> SubscriptionSpec:
    """Check a Subscription resource and return what sync needs from it."""
    status = resource.get("status")
    allowed = CREATE_STATUSES if creating else STATUSES
    if status not in allowed:
        raise _fail(f"Subscription.status must be one of {', '.join(allowed)} "
                    f"(got {status!r}); the server sets 'active' after a successful "
                    "handshake.", "status", prefix)
    if "end" in resource:
        raise _fail("Subscription.end is not supported; delete the Subscription or set its "
                    "status to 'off' instead.", "end", prefix)
    criteria = resource.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise _fail("Subscription.criteria is required.", "criteria", prefix)
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise _fail("Subscription.channel is required.", "channel", prefix)
    if criteria.startswith(("http://", "https://")):
        return _topic_subscription(resource, str(status), channel, base_url, prefix)
    if channel.get("extension"):
        raise _fail("Subscription.channel extensions are only supported on topic-based "
                    "subscriptions.", "channel.extension", prefix)
    request = parse_criteria(criteria, base_url, prefix)
    return SubscriptionSpec(status=str(status), criteria=criteria.strip(),
                            resource_type=request.resource_type,
                            endpoint=_endpoint(channel, prefix),
                            payload=_payload(channel, prefix),
                            headers=_headers(channel, prefix))


def _endpoint(channel: dict[str, Any], prefix: str) -> str:
    if channel.get("type") != "rest-hook":
        raise _fail(f"Subscription.channel.type {channel.get('type')!r} is not supported; "
                    "the gateway delivers over 'rest-hook'.", "channel.type", prefix)
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail("Subscription.channel.endpoint must be an absolute http(s) URL.",
                    "channel.endpoint", prefix)
    return str(endpoint)


def _payload(channel: dict[str, Any], prefix: str) -> str | None:
    payload = channel.get("payload")
    if payload is None:
        return None
    mime = str(payload).split(";")[0].strip().lower()
    if mime not in JSON_PAYLOADS:
        raise _fail(f"Subscription.channel.payload {payload!r} is not supported; use "
                    "'application/fhir+json' or leave it out.", "channel.payload", prefix)
    return mime


def _headers(channel: dict[str, Any], prefix: str) -> tuple[tuple[str, str], ...]:
    headers = channel.get("header") or []
    if not isinstance(headers, list):
        raise _fail("Subscription.channel.header must be a list.", "channel.header", prefix)
    out = []
    for index, header in enumerate(headers):
        name, colon, value = str(header).partition(":")
        if not colon or not name.strip() or any(c in name for c in " \t\r\n") or \
                any(c in value for c in "\r\n"):
            raise _fail(f"Subscription.channel.header {header!r} must look like "
                        "'Name: value'.", f"channel.header[{index}]", prefix)
        out.append((name.strip(), value.strip()))
    return tuple(out)


# -- topic-based (Backport IG) -------------------------------------------------------------

def _topic_subscription(resource: dict[str, Any], status: str, channel: dict[str, Any],
                        base_url: str, prefix: str) -> SubscriptionSpec:
    """A Backport IG R4 Subscription: topic canonical, filters, payload content, channel
    extensions (StructureDefinition-backport-subscription.html)."""
    topic = TOPICS.get(resource["criteria"].strip())
    if topic is None:
        raise _fail(f"Unknown SubscriptionTopic {resource['criteria']!r}; this server "
                    f"publishes {', '.join(sorted(TOPICS))}.", "criteria", prefix)
    filters = _filters(resource, topic.resource_type, base_url, prefix)
    if _payload(channel, prefix) != "application/fhir+json":
        raise _fail("Topic-based notifications are FHIR Bundles: Subscription.channel.payload "
                    "must be 'application/fhir+json'.", "channel.payload", prefix)
    numbers = _channel_numbers(channel, prefix)
    return SubscriptionSpec(
        status=status, criteria=filters, resource_type=topic.resource_type,
        endpoint=_endpoint(channel, prefix), payload="application/fhir+json",
        headers=_headers(channel, prefix), topic=topic.url, content=_content(channel, prefix),
        heartbeat_seconds=numbers.get("backport-heartbeat-period"),
        timeout_seconds=numbers.get("backport-timeout"))


def _extensions(element: Any) -> list[dict[str, Any]]:
    found = element.get("extension") if isinstance(element, dict) else None
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def _filters(resource: dict[str, Any], resource_type: str, base_url: str, prefix: str) -> str:
    """All ``backport-filter-criteria`` of the criteria, ANDed into one search query."""
    queries = []
    for extension in _extensions(resource.get("_criteria")):
        if extension.get("url") != FILTER:
            raise _fail(f"Unsupported extension {extension.get('url')!r} on criteria.",
                        "criteria.extension", prefix)
        text = str(extension.get("valueString", ""))
        if text.partition("?")[0] != resource_type:
            raise _fail(f"The filter {text!r} must be a query on {resource_type} "
                        f"('{resource_type}?param=value').", "criteria.extension", prefix)
        parse_criteria(text, base_url, prefix)
        queries.append(text.partition("?")[2])
    joined = "&".join(q for q in queries if q)
    return f"{resource_type}?{joined}" if joined else resource_type


def _content(channel: dict[str, Any], prefix: str) -> str:
    content = "id-only"
    for extension in _extensions(channel.get("_payload")):
        if extension.get("url") != CONTENT or extension.get("valueCode") not in CONTENTS:
            raise _fail("Subscription.channel.payload content must be one of "
                        f"{', '.join(CONTENTS)} ({CONTENT}).", "channel.payload.extension",
                        prefix)
        content = str(extension["valueCode"])
    return content


def _channel_numbers(channel: dict[str, Any], prefix: str) -> dict[str, int]:
    """Heartbeat period, timeout and max count (backport channel extensions)."""
    out = {}
    for index, extension in enumerate(_extensions(channel)):
        kind = CHANNEL_EXTENSIONS.get(str(extension.get("url")))
        value = extension.get(kind) if kind else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _fail(f"Unsupported or invalid channel extension {extension.get('url')!r}; "
                        "supported: heartbeat period, timeout, max count (positive integers).",
                        f"channel.extension[{index}]", prefix)
        out[str(extension["url"]).removeprefix(BACKPORT)] = value
    return out


# -- the checks the API calls before a write -----------------------------------------------

def check_write(resource_type: str, resource: Any, *, creating: bool,
                base_url: str = "") -> None:
    """Refuse a Subscription (or notification Endpoint) the gateway cannot honour, before
    anything is written."""
    if resource_type == "Subscription" and isinstance(resource, dict):
        parse_subscription(resource, creating=creating, base_url=base_url)
    elif resource_type == "Endpoint" and isinstance(resource, dict):
        parse_endpoint(resource)


def check_bundle(bundle: Any, base_url: str = "") -> None:
    """The same check for each Subscription inside a transaction or batch Bundle."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Endpoint":
            parse_endpoint(resource, prefix=f"Bundle.entry[{index}].resource.")
        if not isinstance(resource, dict) or resource.get("resourceType") != "Subscription":
            continue
        request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
        creating = str(request.get("method", "")).upper() == "POST"
        parse_subscription(resource, creating=creating, base_url=base_url,
                           prefix=f"Bundle.entry[{index}].resource.")
