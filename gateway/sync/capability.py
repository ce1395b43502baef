"""The CapabilityStatement with what sync adds: the SubscriptionTopic canonicals on the
Subscription resource (Backport IG extension ``capabilitystatement-subscriptiontopic-
canonical``, context ``CapabilityStatement.rest.resource``) and its ``$status`` and
``$events`` operations."""

from __future__ import annotations

from functools import cache

import orjson

from gateway.rest.capability import capability_statement
from gateway.sync.topics import TOPICS

TOPIC_CANONICAL = ("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                   "capabilitystatement-subscriptiontopic-canonical")
OPERATIONS = [
    {"name": "status", "definition": "http://hl7.org/fhir/uv/subscriptions-backport/"
                                     "OperationDefinition/backport-subscription-status"},
    {"name": "events", "definition": "http://hl7.org/fhir/uv/subscriptions-backport/"
                                     "OperationDefinition/backport-subscription-events"},
]


@cache
def capability_with_topics(base: str) -> bytes:
    statement = orjson.loads(capability_statement(base))
    for entry in statement["rest"][0]["resource"]:
        if entry["type"] == "Subscription":
            entry["extension"] = [{"url": TOPIC_CANONICAL, "valueCanonical": url}
                                  for url in TOPICS]
            entry["operation"] = OPERATIONS
    return orjson.dumps(statement)
