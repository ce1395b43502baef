"""What a registry row (``sync_subscription``) delivers to: a Subscription, an Endpoint reached
by care-team routing, or a partner FHIR server. Each gets the same event log, queue, retries
and circuit; only a Subscription has a resource whose status the worker keeps."""

from __future__ import annotations

from gateway.sync.careteam import CARE_TEAM_TOPIC

#: Marks the registry row of a partner FHIR server (partners.py); not a SubscriptionTopic.
PARTNER_TOPIC = "urn:fhir-care-gateway:partner-push"
#: Registry rows that stand for no Subscription resource.
NOT_SUBSCRIPTIONS = (CARE_TEAM_TOPIC, PARTNER_TOPIC)


def destination_kind(topic: str | None) -> str:
    """``Subscription``, ``Endpoint`` or ``Partner``: whom a notification is for."""
    if topic == CARE_TEAM_TOPIC:
        return "Endpoint"
    if topic == PARTNER_TOPIC:
        return "Partner"
    return "Subscription"
