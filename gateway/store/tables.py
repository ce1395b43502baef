"""The database schema, as SQLModel tables.

``resource`` holds one row per (type, id) pointing at its current version;
``resource_version`` holds every version's JSON body exactly once (reads serve those bytes);
``idx_*`` are the search index, rewritten for the current version on every write;
``outbox`` receives one row per committed change in the same transaction (sync consumes it);
``inbound_message`` keeps every message received from outside (HL7 v2 ADT...) raw, with its
processing status, before it is acknowledged;
``sync_*`` are the per-subscription event logs, deliveries, attempts and the outbox cursor
(gateway/sync); ``partner``, ``partner_pull``, ``remote_resource``, ``write_conflict`` and
``pull_failure`` are the partner FHIR servers, what was pushed to them or pulled from them,
refused writes and partner resources that could not be imported.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


def _big_pk() -> Column:
    """A 64-bit auto-increment key (SQLite only auto-increments INTEGER PRIMARY KEY)."""
    return Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                  autoincrement=True)


class ResourceRow(SQLModel, table=True):
    __tablename__ = "resource"
    __table_args__ = (
        UniqueConstraint("type", "id", name="uq_resource_type_id"),
        Index("ix_resource_type_updated", "type", "last_updated"),
    )

    rid: int | None = Field(default=None, sa_column=_big_pk())
    type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    version_id: int
    last_updated: float
    deleted: bool = False
    patient: str | None = Field(default=None, max_length=140)


class ResourceVersion(SQLModel, table=True):
    __tablename__ = "resource_version"
    __table_args__ = (Index("ix_version_type_updated", "type", "last_updated"),
                      Index("ix_version_updated", "last_updated"))

    rid: int = Field(sa_column=Column(BigInteger, primary_key=True))
    version_id: int = Field(primary_key=True)
    type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    last_updated: float
    method: str = Field(max_length=8)
    deleted: bool = False
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    patient: str | None = Field(default=None, max_length=140)  # as of this version


class TokenIndex(SQLModel, table=True):
    __tablename__ = "idx_token"
    __table_args__ = (Index("ix_token_lookup", "type", "param", "code", "system"),
                      Index("ix_token_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    system: str | None = Field(default=None, max_length=512)
    code: str | None = Field(default=None, max_length=512)


class StringIndex(SQLModel, table=True):
    __tablename__ = "idx_string"
    __table_args__ = (Index("ix_string_lookup", "type", "param", "value"),
                      Index("ix_string_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: str = Field(max_length=512)
    exact: str = Field(max_length=512)


class ReferenceIndex(SQLModel, table=True):
    __tablename__ = "idx_reference"
    __table_args__ = (Index("ix_reference_lookup", "type", "param", "target_id", "target_type"),
                      Index("ix_reference_target", "target_type", "target_id"),
                      Index("ix_reference_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    target_type: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=1024)


class DateIndex(SQLModel, table=True):
    __tablename__ = "idx_date"
    __table_args__ = (Index("ix_date_low", "type", "param", "low"),
                      Index("ix_date_high", "type", "param", "high"),
                      Index("ix_date_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    low: float
    high: float


class QuantityIndex(SQLModel, table=True):
    __tablename__ = "idx_quantity"
    __table_args__ = (Index("ix_quantity_lookup", "type", "param", "value"),
                      Index("ix_quantity_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: float
    system: str | None = Field(default=None, max_length=512)
    code: str | None = Field(default=None, max_length=512)


class NumberIndex(SQLModel, table=True):
    __tablename__ = "idx_number"
    __table_args__ = (Index("ix_number_lookup", "type", "param", "value"),
                      Index("ix_number_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: float


class UriIndex(SQLModel, table=True):
    __tablename__ = "idx_uri"
    __table_args__ = (Index("ix_uri_lookup", "type", "param", "value"),
                      Index("ix_uri_rid", "rid"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: str = Field(max_length=1024)


class OutboxRow(SQLModel, table=True):
    """One row per committed change, written in the change's own transaction."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_patient", "patient", "seq"),)

    seq: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    version_id: int
    action: str = Field(max_length=8)
    patient: str | None = Field(default=None, max_length=140)
    created_at: float


class InboundMessage(SQLModel, table=True):
    """One inbound message, stored raw (committed) before it is mapped or acknowledged.

    ``status`` is ``received`` (stored, not yet processed; picked up again on start-up),
    ``processed``, ``error`` (stored but could not be mapped: AE, replayable) or ``rejected``
    (unparseable or unsupported: AR). (sender, control_id) = (MSH-3^MSH-4, MSH-10) is unique,
    so a re-sent message is recognised and acknowledged again instead of applied twice.
    """

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("sender", "control_id", name="uq_inbound_sender_control"),
        Index("ix_inbound_status", "status", "id"),
        Index("ix_inbound_visit", "visit", "event_time"),
    )

    id: int | None = Field(default=None, sa_column=_big_pk())
    channel: str = Field(max_length=16)
    sender: str | None = Field(default=None, max_length=256)
    facility: str | None = Field(default=None, max_length=256)
    control_id: str | None = Field(default=None, max_length=200)
    message_type: str | None = Field(default=None, max_length=32)
    version: str | None = Field(default=None, max_length=16)
    visit: str | None = Field(default=None, max_length=512)
    event_time: float | None = None
    received_at: float
    processed_at: float | None = None
    status: str = Field(max_length=16)
    ack_code: str | None = Field(default=None, max_length=2)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error_location: str | None = Field(default=None, max_length=64)
    resources: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ack: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SyncSubscription(SQLModel, table=True):
    """Delivery state of one Subscription resource (R4 subscription.html), kept by sync.

    The Subscription resource is the subscriber's request; this row is what the router and
    the delivery workers need from it, plus the per-subscription event counter that makes
    event numbers gap-free, and the destination circuit (``blocked_until``).
    """

    __tablename__ = "sync_subscription"
    __table_args__ = (UniqueConstraint("rid", name="uq_sync_subscription_rid"),)

    sid: int | None = Field(default=None, sa_column=_big_pk())
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    resource_id: str = Field(max_length=64)
    resource_version: int
    status: str = Field(max_length=16)
    resource_type: str = Field(max_length=64)
    criteria: str = Field(sa_column=Column(Text, nullable=False))
    endpoint: str = Field(max_length=1024)
    payload: str | None = Field(default=None, max_length=64)
    headers: str = Field(sa_column=Column(Text, nullable=False))
    last_event_number: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    blocked_until: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: float
    topic: str | None = Field(default=None, max_length=256)
    content: str | None = Field(default=None, max_length=16)
    heartbeat_seconds: int | None = None
    timeout_seconds: int | None = None
    last_sent_at: float = 0.0


class SyncEvent(SQLModel, table=True):
    """One event of one subscription's log: numbered 1, 2, 3... without gaps."""

    __tablename__ = "sync_event"
    __table_args__ = (UniqueConstraint("sid", "event_number", name="uq_sync_event_number"),
                      Index("ix_sync_event_created", "created_at"),
                      Index("ix_sync_event_patient", "patient", "pk"))

    pk: int | None = Field(default=None, sa_column=_big_pk())
    sid: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    outbox_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    rid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    version_id: int
    action: str = Field(max_length=8)
    patient: str | None = Field(default=None, max_length=140)
    created_at: float


class SyncDelivery(SQLModel, table=True):
    """One notification to send (a handshake or one event), with its delivery state."""

    __tablename__ = "sync_delivery"
    __table_args__ = (Index("ix_sync_delivery_due", "status", "next_attempt_at"),
                      Index("ix_sync_delivery_queue", "sid", "order_key", "status", "id"),
                      Index("ix_sync_delivery_event", "event_pk"))

    id: int | None = Field(default=None, sa_column=_big_pk())
    sid: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_pk: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    kind: str = Field(max_length=16)
    order_key: str = Field(max_length=200)
    notification_id: str = Field(max_length=36)
    status: str = Field(max_length=16)
    attempts: int = 0
    created_at: float
    next_attempt_at: float
    claimed_until: float = 0.0
    first_failure_at: float | None = None
    delivered_at: float | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SyncAttempt(SQLModel, table=True):
    """Evidence of one delivery attempt: when, how long, what the receiver answered."""

    __tablename__ = "sync_attempt"
    __table_args__ = (Index("ix_sync_attempt_delivery", "delivery_id", "attempt"),)

    pk: int | None = Field(default=None, sa_column=_big_pk())
    delivery_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    attempt: int
    started_at: float
    latency_ms: float
    http_status: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome: str = Field(max_length=16)
    url: str = Field(max_length=1300)


class SyncCursor(SQLModel, table=True):
    """How far a sync reader (the router) has consumed the outbox."""

    __tablename__ = "sync_cursor"

    name: str = Field(primary_key=True, max_length=32)
    position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Partner(SQLModel, table=True):
    """A partner FHIR server the gateway pushes changes to and/or pulls changes from."""

    __tablename__ = "partner"
    __table_args__ = (UniqueConstraint("name", name="uq_partner_name"),)

    id: int | None = Field(default=None, sa_column=_big_pk())
    name: str = Field(max_length=64)
    base_url: str = Field(max_length=1024)
    auth: str = Field(max_length=16)
    token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    token_url: str | None = Field(default=None, max_length=1024)
    client_id: str | None = Field(default=None, max_length=256)
    client_secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    scope: str | None = Field(default=None, max_length=512)
    types: str = Field(max_length=256)
    direction: str = Field(max_length=8)
    sid: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    #: The pull lease: who holds it and until when (pull.py); the next scheduled pull.
    pull_claimed_until: float = 0.0
    pull_owner: str | None = Field(default=None, max_length=64)
    pull_next_at: float = Field(default=0.0, sa_column=Column(
        Float, nullable=False, server_default="0"))
    created_at: float


class PartnerPull(SQLModel, table=True):
    """How far a pull has read one type from one partner (its ``_lastUpdated`` mark)."""

    __tablename__ = "partner_pull"

    partner_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    type: str = Field(primary_key=True, max_length=64)
    high_water: str = Field(max_length=40)
    pulled_at: float


class RemoteResource(SQLModel, table=True):
    """A local resource's copy on a destination that is written to (a partner, or an
    Endpoint of format rest-write): its id and version there."""

    __tablename__ = "remote_resource"
    __table_args__ = (Index("ix_remote_resource_remote", "sid", "type", "remote_id"),)

    sid: int = Field(sa_column=Column(BigInteger, primary_key=True))
    rid: int = Field(sa_column=Column(BigInteger, primary_key=True))
    type: str = Field(max_length=64)
    remote_id: str = Field(max_length=64)
    remote_version: str | None = Field(default=None, max_length=64)
    local_version: int | None = None
    updated_at: float


class WriteConflict(SQLModel, table=True):
    """A write refused because the other side's copy moved on: ``push``, the destination
    answered 412/409; ``pull``, a partner's change met a local edit not yet pushed."""

    __tablename__ = "write_conflict"
    __table_args__ = (Index("ix_write_conflict_sid", "sid", "id"),)

    id: int | None = Field(default=None, sa_column=_big_pk())
    sid: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivery_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    destination: str = Field(max_length=1024)
    type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    version_id: int
    remote_id: str | None = Field(default=None, max_length=64)
    expected_version: str | None = Field(default=None, max_length=64)
    http_status: int | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: float
    direction: str = Field(default="push", sa_column=Column(
        String(8), nullable=False, server_default="push"))


class PullFailure(SQLModel, table=True):
    """A partner's resource a pull could not import (malformed, or refused by the store):
    passed over so the partner's other changes still arrive, and kept for operators."""

    __tablename__ = "pull_failure"
    __table_args__ = (Index("ix_pull_failure_sid", "sid", "id"),)

    id: int | None = Field(default=None, sa_column=_big_pk())
    sid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=64)
    remote_id: str | None = Field(default=None, max_length=64)
    remote_version: str | None = Field(default=None, max_length=64)
    error: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float


INDEX_TABLES = {
    "token": TokenIndex.__table__,
    "string": StringIndex.__table__,
    "reference": ReferenceIndex.__table__,
    "date": DateIndex.__table__,
    "quantity": QuantityIndex.__table__,
    "number": NumberIndex.__table__,
    "uri": UriIndex.__table__,
}
resource_table = ResourceRow.__table__
version_table = ResourceVersion.__table__
outbox_table = OutboxRow.__table__
inbound_table = InboundMessage.__table__
sync_subscription_table = SyncSubscription.__table__
sync_event_table = SyncEvent.__table__
sync_delivery_table = SyncDelivery.__table__
sync_attempt_table = SyncAttempt.__table__
sync_cursor_table = SyncCursor.__table__
partner_table = Partner.__table__
partner_pull_table = PartnerPull.__table__
remote_resource_table = RemoteResource.__table__
write_conflict_table = WriteConflict.__table__
pull_failure_table = PullFailure.__table__
metadata = SQLModel.metadata

# The client registry's tables (auth_client, auth_jti) live beside their code; importing it
# here puts them in ``metadata`` for migrations and tests.
from gateway.store import clients as _clients  # noqa: E402, F401

# The people who sign in to the pages, and their sessions (auth_user, auth_session).
from gateway.store import users as _users  # noqa: E402, F401
