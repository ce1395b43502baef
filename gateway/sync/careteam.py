"""Care-team routing: a patient's transitions and plan changes reach every current member of
the patient's CareTeams that has a registered notification Endpoint -- no per-patient
Subscription needed. This is how a PCP practice hears of its patient's discharge from a
hospital it has never dealt with.

Who is reached. For a change with a patient: each CareTeam with ``patient`` = that patient
and ``status`` active (or absent); each participant whose ``period`` covers now; its member
-- an Organization or PractitionerRole through its ``endpoint``, a Practitioner through the
``endpoint`` of its PractitionerRoles; each such Endpoint that is ``active`` and declares a
notification format in ``payloadType`` (code system ``FORMAT_SYSTEM``). Membership is read
when the change is routed, so a member whose participation has ended hears nothing more.

What is sent, by the format the Endpoint declares in ``payloadType`` (R4 endpoint.html:
"the payload type describes the acceptable content that can be communicated on the
endpoint"; an example binding, so the gateway's ``FORMAT_SYSTEM`` is used):
``backport-notification``, a Backport IG notification Bundle (``backport.py``, full
resource) on the topic ``CARE_TEAM_TOPIC``, POSTed to ``Endpoint.address``; ``rest-write``,
the resource written into the FHIR server at ``Endpoint.address`` (``push.py``);
``davinci-message``, a Da Vinci notification message POSTed to its ``$process-message``
(``messages.py``, Encounter transitions only). ``Endpoint.header`` values go as headers;
all use the same event log and delivery engine as Subscriptions (one log per Endpoint).

Which changes. Encounters whose admission, discharge or transfer trigger fires (topics.py)
and every CarePlan change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.errors import GatewayError, UnprocessableResource
from gateway.store import careteams
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.tables import sync_subscription_table
from gateway.sync.topics import BASE, TOPICS, Body

S = sync_subscription_table.c
FORMAT_SYSTEM = "http://fhir-care-gateway.org/CodeSystem/notification-format"
BACKPORT, REST_WRITE, DAVINCI = "backport-notification", "rest-write", "davinci-message"
SUPPORTED = (BACKPORT, REST_WRITE, DAVINCI)
#: Registry ``content`` of each format (backport Bundles carry the full resource).
CONTENT = {BACKPORT: "full-resource", REST_WRITE: REST_WRITE, DAVINCI: DAVINCI}
CARE_TEAM_TOPIC = BASE + "care-team-patient"
_TRANSITIONS = [TOPICS[BASE + code] for code in
                ("encounter-admitted", "encounter-discharged", "encounter-transferred")]


@dataclass(frozen=True)
class EndpointSpec:
    address: str
    headers: tuple[tuple[str, str], ...]
    active: bool
    format: str = BACKPORT


# -- the Endpoint check (on write) ---------------------------------------------------------

def parse_endpoint(resource: dict[str, Any], prefix: str = "Endpoint.") -> EndpointSpec | None:
    """The notification target an Endpoint declares (None when it declares none); refuses a
    format the gateway cannot send."""
    formats = [(i, c.get("code")) for i, concept in enumerate(resource.get("payloadType") or [])
               if isinstance(concept, dict)
               for c in concept.get("coding") or [] if isinstance(c, dict)
               and c.get("system") == FORMAT_SYSTEM]
    if not formats:
        return None
    for index, code in formats:
        if code not in SUPPORTED:
            raise UnprocessableResource(
                f"Notification format {code!r} is unknown; supported: {', '.join(SUPPORTED)}.",
                expression=[f"{prefix}payloadType[{index}]"], code="not-supported")
    if len({code for _, code in formats}) > 1:
        raise UnprocessableResource("An Endpoint declares one notification format.",
                                    expression=[f"{prefix}payloadType"])
    address = str(resource.get("address", ""))
    if not address.startswith(("http://", "https://")):
        raise UnprocessableResource("A notification Endpoint needs an http(s) address.",
                                    expression=[f"{prefix}address"])
    headers = tuple(_header(h, i, prefix) for i, h in enumerate(resource.get("header") or []))
    return EndpointSpec(address, headers, resource.get("status") == "active", formats[0][1])


def _header(text: Any, index: int, prefix: str) -> tuple[str, str]:
    name, colon, value = str(text).partition(":")
    if not colon or not name.strip() or any(c in str(text) for c in "\r\n"):
        raise UnprocessableResource(f"Endpoint.header {text!r} must look like 'Name: value'.",
                                    expression=[f"{prefix}header[{index}]"])
    return name.strip(), value.strip()


# -- who is reached ------------------------------------------------------------------------

def notifies(resource_type: str, before: Body, after: Body) -> bool:
    """Whether a change is a transition or plan change care teams hear about."""
    if resource_type == "CarePlan":
        return True
    return transition(before, after) is not None


def transition(before: Body, after: Body) -> str | None:
    """The Encounter transition a change is (``encounter-admitted``, ``-discharged``,
    ``-transferred``), None when it is none of them."""
    for topic in _TRANSITIONS:
        if topic.trigger(before, after):
            return topic.code
    return None


def accepts(endpoint: dict[str, Any], resource_type: str, action: str) -> bool:
    """Whether an Endpoint takes a change: Da Vinci notification messages exist only for
    Encounter transitions; FHIR writes and messages carry no deletions."""
    try:
        spec = parse_endpoint(endpoint)
    except GatewayError:
        return False
    if spec is None or (spec.format != BACKPORT and action == "delete"):
        return False
    return spec.format != DAVINCI or resource_type == "Encounter"


def endpoints_for(repo: Repository, patient: str, now: float) -> dict[int, tuple[str, Any]]:
    """Endpoint rid -> (id, body) for the current members of the patient's care teams."""
    found: dict[int, tuple[str, Any]] = {}
    for team in careteams.patient_teams(repo, patient):
        for member in careteams.current_members(team, now):
            for endpoint in careteams.member_endpoints(repo, member):
                stored = careteams.read_reference(repo, endpoint)
                if stored is not None:
                    found[stored.rid] = (stored.id, stored.json())
    return found


# -- the registry rows of Endpoints --------------------------------------------------------

def _values(spec: EndpointSpec | None) -> dict[str, Any]:
    if spec is None or not spec.active:
        return {"status": "off", "endpoint": "", "headers": "[]"}
    return {"status": "active", "endpoint": spec.address, "content": CONTENT[spec.format],
            "headers": orjson.dumps(spec.headers).decode()}


def endpoint_sid(conn: Connection, rid: int, endpoint_id: str, body: dict[str, Any]) -> int | None:
    """The registry row (one event log) of a notification Endpoint, made on first use."""
    row = conn.execute(select(S.sid, S.status).where(S.rid == rid)).first()
    if row is not None:
        return int(row.sid) if row.status == "active" else None
    try:
        values = _values(parse_endpoint(body))
    except GatewayError:
        return None
    if values["status"] != "active":
        return None
    return int(conn.execute(insert(sync_subscription_table).values(
        rid=rid, resource_id=endpoint_id, resource_version=0, resource_type="",
        criteria="", payload="application/fhir+json", topic=CARE_TEAM_TOPIC,
        last_event_number=0, blocked_until=0.0, last_sent_at=0.0,
        updated_at=time.time(), **values)).inserted_primary_key[0])


def apply_endpoint_change(conn: Connection, rid: int, body: dict[str, Any] | None) -> None:
    """Keep an Endpoint's registry row (if it has one) in step with the Endpoint."""
    try:
        values = _values(parse_endpoint(body) if body else None)
    except GatewayError:
        values = _values(None)
    conn.execute(update(sync_subscription_table)
                 .where(S.rid == rid, S.topic == CARE_TEAM_TOPIC)
                 .values(updated_at=time.time(), **values))


def repository(db: Database, conn: Connection, base_url: str) -> Repository:
    return Repository(db, conn, base_url)
