"""Topic triggers are pure functions of (before, after); topic Subscriptions parse into what
the router needs."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.sync.criteria import parse_subscription
from gateway.sync.topics import BASE, TOPICS

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


def enc(status: str | None, *locations: str) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"resourceType": "Encounter", "status": status,
            "location": [{"location": {"reference": f"Location/{x}"}} for x in locations]}


@pytest.mark.parametrize(("topic", "before", "after", "fires"), [
    ("encounter-admitted", None, enc("in-progress"), True),
    ("encounter-admitted", enc("planned"), enc("in-progress"), True),
    ("encounter-admitted", enc("arrived"), enc("in-progress"), True),
    ("encounter-admitted", enc("in-progress"), enc("in-progress"), False),  # no change
    ("encounter-admitted", enc("in-progress"), None, False),                # deleted
    ("encounter-discharged", enc("in-progress"), enc("finished"), True),
    ("encounter-discharged", enc("finished"), enc("finished"), False),
    ("encounter-discharged", None, enc("planned"), False),
    ("encounter-transferred", enc("in-progress", "a"), enc("in-progress", "b"), True),
    ("encounter-transferred", enc("in-progress", "a"), enc("in-progress", "a"), False),
    ("encounter-transferred", enc("planned", "a"), enc("in-progress", "b"), False),
    ("encounter-transferred", enc("in-progress", "a"), enc("in-progress"), False),
    ("careplan-changed", None, {"status": "active"}, True),
    ("careplan-changed", {"status": "active"}, None, True),
    ("task-changed", {"status": "ready"}, {"status": "completed"}, True),
])
def test_triggers(topic: str, before: Any, after: Any, fires: bool) -> None:
    assert TOPICS[BASE + topic].trigger(before, after) is fires


def test_topic_subscription_parses_filters_content_and_channel_numbers() -> None:
    spec = parse_subscription({
        "resourceType": "Subscription", "status": "requested", "reason": "x",
        "criteria": BASE + "encounter-admitted",
        "_criteria": {"extension": [
            {"url": BACKPORT + "backport-filter-criteria", "valueString": "Encounter?class=IMP"},
            {"url": BACKPORT + "backport-filter-criteria",
             "valueString": "Encounter?patient=Patient/1"}]},
        "channel": {"type": "rest-hook", "endpoint": "https://x.org/hook",
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                "valueCode": "full-resource"}]},
                    "extension": [
                        {"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": 60},
                        {"url": BACKPORT + "backport-timeout", "valueUnsignedInt": 5},
                        {"url": BACKPORT + "backport-max-count", "valuePositiveInt": 10}]},
    }, creating=True)
    assert spec.topic == BASE + "encounter-admitted"
    assert spec.resource_type == "Encounter"
    assert spec.criteria == "Encounter?class=IMP&patient=Patient/1"
    assert (spec.content, spec.heartbeat_seconds, spec.timeout_seconds) == \
        ("full-resource", 60, 5)


def test_zero_heartbeat_is_refused() -> None:
    with pytest.raises(GatewayError) as refused:
        parse_subscription({
            "status": "requested", "criteria": BASE + "task-changed",
            "channel": {"type": "rest-hook", "endpoint": "https://x.org",
                        "payload": "application/fhir+json",
                        "extension": [{"url": BACKPORT + "backport-heartbeat-period",
                                       "valueUnsignedInt": 0}]}}, creating=True)
    assert refused.value.expression == ["Subscription.channel.extension[0]"]
    assert refused.value.status == 422
