"""The SubscriptionTopics the gateway publishes (Subscriptions R5 Backport IG, R4 profile:
https://hl7.org/fhir/uv/subscriptions-backport/ -- a topic-based Subscription's ``criteria``
is one of these canonicals).

Each topic names one resource type and a trigger: a pure function of the previous and the new
version of a resource (None for "did not exist" / "deleted"). Filters
(``backport-filter-criteria``) are ordinary search queries on that type, evaluated with the
search code of the API, so every search parameter of the type can filter: ``patient``,
``service-provider`` (the organization), ``class`` for encounters, and so on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BASE = "http://fhir-care-gateway.org/SubscriptionTopic/"

Body = dict[str, Any] | None
Trigger = Callable[[Body, Body], bool]


@dataclass(frozen=True)
class Topic:
    code: str
    resource_type: str
    title: str
    trigger: Trigger

    @property
    def url(self) -> str:
        return BASE + self.code

    def definition(self) -> dict[str, Any]:
        """An R4B/R5-shaped SubscriptionTopic describing this topic (for discovery)."""
        return {"resourceType": "SubscriptionTopic", "id": self.code, "url": self.url,
                "title": self.title, "status": "active",
                "resourceTrigger": [{"description": self.title,
                                     "resource": self.resource_type,
                                     "supportedInteraction": ["create", "update", "delete"]}],
                "canFilterBy": [{"resource": self.resource_type,
                                 "description": "any search parameter of "
                                                f"{self.resource_type}"}]}


def _status(body: Body) -> str | None:
    return body.get("status") if body else None


def _becomes(status: str) -> Trigger:
    def trigger(before: Body, after: Body) -> bool:
        return _status(after) == status and _status(before) != status
    return trigger


def _locations(body: Body) -> set[str]:
    return {str((entry.get("location") or {}).get("reference"))
            for entry in (body or {}).get("location", []) if isinstance(entry, dict)}


def _transferred(before: Body, after: Body) -> bool:
    """Still in progress, at another location (R4 Encounter.location)."""
    return (_status(before) == _status(after) == "in-progress"
            and bool(_locations(after)) and _locations(after) != _locations(before))


def _any_change(before: Body, after: Body) -> bool:
    return before is not None or after is not None


TOPICS: dict[str, Topic] = {t.url: t for t in (
    Topic("encounter-admitted", "Encounter", "Encounter admitted (status becomes in-progress)",
          _becomes("in-progress")),
    Topic("encounter-discharged", "Encounter", "Encounter discharged (status becomes finished)",
          _becomes("finished")),
    Topic("encounter-transferred", "Encounter",
          "Encounter transferred (in progress, location changed)", _transferred),
    Topic("careplan-changed", "CarePlan", "CarePlan created, changed or deleted", _any_change),
    Topic("careteam-changed", "CareTeam", "CareTeam created, changed or deleted", _any_change),
    Topic("task-changed", "Task", "Task created, changed or deleted", _any_change),
)}
