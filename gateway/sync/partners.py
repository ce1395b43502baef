"""The registry of partner FHIR servers, shared by ``gateway partners ...`` and
``/sync/partners``.

A partner has a base URL, credentials (partner_auth.py), the resource types exchanged and a
direction: ``push`` (changes written into the partner, push.py), ``pull`` (the partner polled
for changes, pull.py) or ``both``. Each partner owns a delivery registry row
(``sync_subscription`` with topic ``PARTNER_TOPIC``), so pushes go through the event log,
queue, retries and circuit every other destination uses.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.store.db import Database
from gateway.store.tables import (
    partner_pull_table,
    partner_table,
    pull_failure_table,
    sync_delivery_table,
    sync_subscription_table,
    write_conflict_table,
)
from gateway.sync.destinations import PARTNER_TOPIC
from gateway.sync.partner_auth import AUTH_KINDS, Credentials

P = partner_table.c
S = sync_subscription_table.c
W = write_conflict_table.c
F = pull_failure_table.c
DIRECTIONS = ("push", "pull", "both")
TYPES = ("CarePlan", "CareTeam", "Encounter")


@dataclass
class PartnerSpec:
    """What an operator registers (``add``)."""

    name: str
    base_url: str
    types: list[str] = field(default_factory=lambda: list(TYPES))
    direction: str = "push"
    auth: str = "none"
    token: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None

    def check(self) -> None:
        """Refuse what could never work, naming the field at fault; types are kept once
        each, in the order given."""
        self.types = list(dict.fromkeys(self.types))
        _require(bool(self.name) and _fits(self.name, P.name) and self.name.isprintable(),
                 f"A partner needs a name of at most {P.name.type.length} characters.",
                 "name")
        for name in _SIZED:
            value = getattr(self, name)
            _require(value is None or _fits(value, P[name]),
                     f"{name} is longer than {P[name].type.length} characters.", name)
        _require(self.base_url.startswith(("http://", "https://")),
                 "The partner's base URL must be http(s).", "base_url")
        _require(self.direction in DIRECTIONS,
                 f"direction must be one of {', '.join(DIRECTIONS)}.", "direction")
        _require(bool(self.types) and all(t in TYPES for t in self.types),
                 f"types must be some of {', '.join(TYPES)}.", "types")
        _require(self.auth in AUTH_KINDS, f"auth must be one of {', '.join(AUTH_KINDS)}.",
                 "auth")
        _require(self.auth != "bearer" or bool(self.token), "auth bearer needs a token.",
                 "token")
        for name in ("token_url", "client_id", "client_secret"):
            _require(self.auth != "oauth2" or bool(getattr(self, name)),
                     f"auth oauth2 needs {name}.", name)


def spec_from_json(body: Any) -> PartnerSpec:
    """A PartnerSpec from a JSON object (``POST /sync/partners``), naming a bad field."""
    _require(isinstance(body, dict), "The body must be a JSON object.", "$")
    known = set(PartnerSpec.__dataclass_fields__)
    for key, value in body.items():
        _require(key in known, f"Unknown field {key!r}; known: {', '.join(sorted(known))}.",
                 key)
        if key == "types":
            _require(isinstance(value, list) and all(isinstance(t, str) for t in value),
                     "types must be a list of resource types.", key)
        else:
            _require(value is None or isinstance(value, str), f"{key} must be a string.", key)
    for key in ("name", "base_url"):
        _require(bool(body.get(key)), f"{key} is required.", key)
    return PartnerSpec(**body)


#: Fields stored in columns of limited size: longer values are refused, not truncated.
_SIZED = ("base_url", "token_url", "client_id", "scope")


def _fits(value: str, column: Any) -> bool:
    return len(value) <= column.type.length


def _require(condition: bool, message: str, element: str) -> None:
    if not condition:
        raise InvalidRequest(message, expression=[element])


def add_partner(db: Database, spec: PartnerSpec) -> dict[str, Any]:
    """Register a partner and its delivery row, in one transaction."""
    spec.check()
    spec.base_url = spec.base_url.rstrip("/")
    try:
        with db.write() as conn:
            _insert_partner(conn, spec)
    except IntegrityError as error:  # registered by someone else at the same moment
        raise Conflict(f"A partner named {spec.name!r} exists already, or was being "
                       "registered at the same time; list the partners and try again.",
                       expression=["name"]) from error
    return get_partner(db, spec.name)


def _insert_partner(conn: Connection, spec: PartnerSpec) -> None:
    """The partner row and its delivery row. The delivery row's ``rid`` (negative: no
    resource) is the next unused one, not derived from the partner id: SQLite reuses the
    id of a removed last row, and removed partners keep their delivery row (evidence)."""
    if conn.execute(select(P.id).where(P.name == spec.name)).first() is not None:
        raise Conflict(f"A partner named {spec.name!r} exists already.", expression=["name"])
    now = time.time()
    values = asdict(spec)
    values["types"] = ",".join(spec.types)
    partner_id = conn.execute(insert(partner_table).values(
        created_at=now, pull_claimed_until=0.0, **values)).inserted_primary_key[0]
    lowest = conn.execute(select(func.min(S.rid))).scalar()
    sid = conn.execute(insert(sync_subscription_table).values(
        rid=min(int(lowest or 0), 0) - 1, resource_id=spec.name, resource_version=0,
        status="active", resource_type="", criteria="", endpoint=spec.base_url,
        payload="application/fhir+json", headers="[]", last_event_number=0,
        blocked_until=0.0, updated_at=now, topic=PARTNER_TOPIC, content="rest-write",
        last_sent_at=0.0)).inserted_primary_key[0]
    conn.execute(update(partner_table).where(P.id == partner_id).values(sid=sid))


def get_partner(db: Database, name: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = conn.execute(select(partner_table).where(P.name == name)).first()
    if row is None:
        raise NotFound(f"Partner {name!r} is not known.")
    return _public(row)


def list_partners(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [_public(r) for r in conn.execute(select(partner_table).order_by(P.name))]


def remove_partner(db: Database, name: str) -> None:
    """Forget a partner: its pending pushes are skipped, its pull marks dropped; conflicts
    and delivery evidence stay."""
    with db.write() as conn:
        row = conn.execute(select(P.id, P.sid).where(P.name == name)).first()
        if row is None:
            raise NotFound(f"Partner {name!r} is not known.")
        conn.execute(update(sync_subscription_table).where(S.sid == row.sid)
                     .values(status="off", updated_at=time.time()))
        conn.execute(update(sync_delivery_table).where(
            sync_delivery_table.c.sid == row.sid,
            sync_delivery_table.c.status == "pending").values(status="skipped"))
        conn.execute(delete(partner_pull_table)
                     .where(partner_pull_table.c.partner_id == row.id))
        conn.execute(delete(partner_table).where(P.id == row.id))


def _public(row: Any) -> dict[str, Any]:
    """A partner as shown to operators: secrets are never echoed."""
    out = dict(row._mapping)
    out["types"] = out["types"].split(",")
    for secret in ("token", "client_secret"):
        out[secret] = "***" if out.get(secret) else None
    for internal in ("pull_claimed_until", "pull_owner", "pull_next_at"):
        out.pop(internal, None)
    return out


# -- what push, pull and the router need ---------------------------------------------------

@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    base_url: str
    types: tuple[str, ...]
    direction: str
    sid: int
    credentials: Credentials

    @property
    def pushes(self) -> bool:
        return self.direction in ("push", "both")

    @property
    def pulls(self) -> bool:
        return self.direction in ("pull", "both")

    def is_source_of(self, resource: dict[str, Any] | None) -> bool:
        """Whether a version names this partner as its source (``meta.source`` under its
        base URL: set by pull.py, or by a gateway pushing from that base): it came from the
        partner and is not echoed back."""
        source = ((resource or {}).get("meta") or {}).get("source")
        return isinstance(source, str) and source.startswith(self.base_url + "/")


def partners(conn: Connection) -> list[Partner]:
    return [_partner(row) for row in conn.execute(select(partner_table).order_by(P.id))]


def by_sid(conn: Connection, sid: int) -> Partner | None:
    row = conn.execute(select(partner_table).where(P.sid == sid)).first()
    return None if row is None else _partner(row)


def by_name(conn: Connection, name: str) -> Partner:
    row = conn.execute(select(partner_table).where(P.name == name)).first()
    if row is None:
        raise NotFound(f"Partner {name!r} is not known.")
    return _partner(row)


def _partner(row: Any) -> Partner:
    return Partner(int(row.id), row.name, row.base_url, tuple(row.types.split(",")),
                   row.direction, int(row.sid), Credentials(
                       row.auth, row.token, row.token_url, row.client_id,
                       row.client_secret, row.scope))


# -- conflicts -----------------------------------------------------------------------------

def list_conflicts(db: Database, *, partner: str | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
    """Refused writes, newest first: ``push``, a destination refused the gateway's write
    because its copy had moved on; ``pull``, the gateway did not import a partner's change
    because of a local edit not yet pushed."""
    statement = (select(write_conflict_table, S.resource_id.label("destination_name"),
                        S.topic)
                 .join_from(write_conflict_table, sync_subscription_table, S.sid == W.sid)
                 .order_by(W.id.desc()).limit(max(1, min(limit, 1000))))
    if partner:
        statement = statement.where(S.topic == PARTNER_TOPIC, S.resource_id == partner)
    with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(statement)]
    for row in rows:
        kind = "Partner" if row.pop("topic") == PARTNER_TOPIC else "Endpoint"
        row["destination_name"] = f"{kind}/{row['destination_name']}"
        row["focus"] = f"{row['type']}/{row['resource_id']}/_history/{row['version_id']}"
    return rows


def list_pull_failures(db: Database, *, partner: str | None = None,
                       limit: int = 100) -> list[dict[str, Any]]:
    """Partner resources a pull passed over because they could not be imported (the
    latest failure of each), newest first."""
    statement = (select(pull_failure_table, S.resource_id.label("partner"))
                 .join_from(pull_failure_table, sync_subscription_table, S.sid == F.sid)
                 .order_by(F.id.desc()).limit(max(1, min(limit, 1000))))
    if partner:
        statement = statement.where(S.resource_id == partner)
    with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(statement)]
    for row in rows:
        row["partner"] = f"Partner/{row['partner']}"
        row.pop("sid")
    return rows
