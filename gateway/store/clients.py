"""The registry of client applications and the record of assertion ids already used.

``auth_client`` holds each system allowed to ask for tokens (SMART Backend Services): its
public keys (a JWKS inline or the URL it publishes them at), the scopes it may be granted,
the organizations it acts for and whether it is an administrator. ``auth_jti`` remembers the
``jti`` of every accepted client assertion until it expires, in the database, so a replayed
assertion is refused after a restart and by every process (SMART Backend Services,
"Authenticating to the token endpoint": the server SHALL NOT accept a jti seen before).
These are gateway tables, not FHIR resources.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from gateway.store.access import ADMIN_ONLY_TYPES, Access

if TYPE_CHECKING:  # tables.py imports this module, and db.py imports tables.py
    from gateway.store.db import Database


# Identifies a client in AuditEvent.agent and in the tag on the Subscriptions it owns.
CLIENT_SYSTEM = "urn:fhir-care-gateway:client"


class ClientRow(SQLModel, table=True):
    __tablename__ = "auth_client"

    client_id: str = Field(primary_key=True, max_length=128)
    name: str = Field(default="", max_length=256)
    jwks: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    jwks_url: str | None = Field(default=None, max_length=1024)
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    organizations: str = Field(sa_column=Column(Text, nullable=False))
    admin: bool = False
    disabled: bool = False
    created_at: float


class UsedAssertion(SQLModel, table=True):
    __tablename__ = "auth_jti"

    client_id: str = Field(primary_key=True, max_length=128)
    jti: str = Field(primary_key=True, max_length=256)
    expires_at: float = Field(index=True)


client_table = ClientRow.__table__
jti_table = UsedAssertion.__table__


@dataclass(frozen=True)
class Client:
    """A registered client application."""

    client_id: str
    name: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    scopes: tuple[str, ...]
    organizations: tuple[str, ...]
    admin: bool
    disabled: bool


def _client(row: Any) -> Client:
    return Client(row.client_id, row.name, json.loads(row.jwks) if row.jwks else None,
                  row.jwks_url, tuple(row.scopes.split()),
                  tuple(json.loads(row.organizations)), bool(row.admin), bool(row.disabled))


class ClientRegistry:
    """Add, list, disable and look up clients; record used assertion ids."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, client: Client) -> None:
        values = {"client_id": client.client_id, "name": client.name,
                  "jwks": json.dumps(client.jwks) if client.jwks else None,
                  "jwks_url": client.jwks_url, "scopes": " ".join(client.scopes),
                  "organizations": json.dumps(list(client.organizations)),
                  "admin": client.admin, "disabled": client.disabled,
                  "created_at": time.time()}
        with self.db.write() as connection:
            connection.execute(insert(client_table).values(values))

    def get(self, client_id: str) -> Client | None:
        with self.db.engine.connect() as connection:
            row = connection.execute(select(client_table).where(
                client_table.c.client_id == client_id)).first()
        return _client(row) if row is not None else None

    def list(self) -> list[Client]:
        with self.db.engine.connect() as connection:
            rows = connection.execute(select(client_table).order_by(client_table.c.client_id))
            return [_client(row) for row in rows]

    def set_disabled(self, client_id: str, disabled: bool = True) -> bool:
        """Disable (or enable) a client; False when no such client exists."""
        with self.db.write() as connection:
            changed = connection.execute(update(client_table).where(
                client_table.c.client_id == client_id).values(disabled=disabled)).rowcount
        return bool(changed)

    def use_assertion(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record ``jti`` as used; False when it was used before (a replay)."""
        now = time.time()
        try:
            with self.db.write() as connection:
                connection.execute(delete(jti_table).where(jti_table.c.expires_at < now - 60))
                connection.execute(insert(jti_table).values(
                    client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True


def subscription_access(conn: Any, rid: int) -> Access | None:
    """What the client that made a Subscription (its owner tag) may be notified of: None
    for one made without authorization or by an administrator; nothing patient-related for
    a client since removed or disabled."""
    return subscription_accesses(conn, [rid])[rid]


def subscription_accesses(conn: Any, rids: list[int]) -> dict[int, Access | None]:
    """``subscription_access`` of many Subscriptions in two statements (owners, then their
    clients), whatever their number: the router reads every subscription each batch."""
    from gateway.store.tables import INDEX_TABLES  # tables.py imports this module

    _token = INDEX_TABLES["token"]
    owners: dict[int, str] = {}
    for start in range(0, len(rids), 1000):
        owners.update((rid, code) for rid, code in conn.execute(
            select(_token.c.rid, _token.c.code).where(
                _token.c.rid.in_(rids[start:start + 1000]), _token.c.type == "Subscription",
                _token.c.param == "_tag", _token.c.system == CLIENT_SYSTEM)))
    clients = {row.client_id: _client(row) for row in conn.execute(select(client_table).where(
        client_table.c.client_id.in_(sorted(set(owners.values())))))} if owners else {}
    return {rid: _owner_access(owners.get(rid), clients) for rid in rids}


def _owner_access(owner: str | None, clients: dict[str, Client]) -> Access | None:
    if owner is None:
        return None
    client = clients.get(owner)
    if client is not None and client.admin and not client.disabled:
        return None
    if client is None or client.disabled:
        return Access(organizations=(), hidden_types=ADMIN_ONLY_TYPES)
    return Access(organizations=client.organizations, hidden_types=ADMIN_ONLY_TYPES)
