"""People who sign in to the coordinator pages, and their sessions.

``auth_user`` holds each person: a password hash (made by gateway/auth/passwords.py; the
store never sees a password), the organizations whose patients they may see (the same
rule as a client's, store/access.py) and an admin flag. ``auth_session`` holds each open
session by the SHA-256 of its secret (a stolen table does not give working cookies), with
its CSRF token and expiry; signing out deletes the row, disabling the person ends every
session at the next request. These are gateway tables, not FHIR resources.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Text, delete, insert, select, update
from sqlmodel import Field, SQLModel

from gateway.store.access import ADMIN_ONLY_TYPES, Access

if TYPE_CHECKING:  # tables.py imports this module, and db.py imports tables.py
    from gateway.store.db import Database

# Identifies a person in AuditEvent.agent (clients have store.clients.CLIENT_SYSTEM).
USER_SYSTEM = "urn:fhir-care-gateway:user"


class UserRow(SQLModel, table=True):
    __tablename__ = "auth_user"

    name: str = Field(primary_key=True, max_length=128)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    organizations: str = Field(sa_column=Column(Text, nullable=False))
    admin: bool = False
    disabled: bool = False
    created_at: float


class SessionRow(SQLModel, table=True):
    __tablename__ = "auth_session"

    secret_hash: str = Field(primary_key=True, max_length=64)
    user_name: str = Field(max_length=128, index=True)
    csrf: str = Field(max_length=64)
    expires_at: float = Field(index=True)


user_table = UserRow.__table__
session_table = SessionRow.__table__


@dataclass(frozen=True)
class User:
    """A registered person."""

    name: str
    password_hash: str
    organizations: tuple[str, ...]
    admin: bool
    disabled: bool

    def access(self) -> Access:
        """What the person may see: every patient for an admin, else their organizations'."""
        if self.admin:
            return Access()
        return Access(organizations=self.organizations, hidden_types=ADMIN_ONLY_TYPES)


@dataclass(frozen=True)
class Session:
    """An open session: whose, its CSRF token, when it ends."""

    user: User
    csrf: str
    expires_at: float


def _user(row: Any) -> User:
    return User(row.name, row.password_hash, tuple(json.loads(row.organizations)),
                bool(row.admin), bool(row.disabled))


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class UserRegistry:
    """Add, list, disable and look up people; open, find and end their sessions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, user: User) -> None:
        with self.db.write() as connection:
            connection.execute(insert(user_table).values(
                name=user.name, password_hash=user.password_hash,
                organizations=json.dumps(list(user.organizations)), admin=user.admin,
                disabled=user.disabled, created_at=time.time()))

    def get(self, name: str) -> User | None:
        with self.db.engine.connect() as connection:
            row = connection.execute(select(user_table).where(
                user_table.c.name == name)).first()
        return _user(row) if row is not None else None

    def list(self) -> list[User]:
        with self.db.engine.connect() as connection:
            return [_user(r) for r in connection.execute(
                select(user_table).order_by(user_table.c.name))]

    def set_disabled(self, name: str, disabled: bool = True) -> bool:
        """Disable (or enable) a person and end their sessions; False when unknown."""
        with self.db.write() as connection:
            changed = connection.execute(update(user_table).where(
                user_table.c.name == name).values(disabled=disabled)).rowcount
            if disabled:
                connection.execute(delete(session_table).where(
                    session_table.c.user_name == name))
        return bool(changed)

    def open_session(self, name: str, secret: str, csrf: str, expires_at: float) -> None:
        """Store a new session (and drop expired ones)."""
        with self.db.write() as connection:
            connection.execute(delete(session_table).where(
                session_table.c.expires_at < time.time()))
            connection.execute(insert(session_table).values(
                secret_hash=secret_hash(secret), user_name=name, csrf=csrf,
                expires_at=expires_at))

    def session(self, secret: str) -> Session | None:
        """The open, unexpired session of an enabled person holding ``secret``."""
        with self.db.engine.connect() as connection:
            row = connection.execute(
                select(session_table, user_table).join(
                    user_table, user_table.c.name == session_table.c.user_name).where(
                    session_table.c.secret_hash == secret_hash(secret),
                    session_table.c.expires_at > time.time())).first()
        if row is None or row.disabled:
            return None
        return Session(_user(row), row.csrf, row.expires_at)

    def end_session(self, secret: str) -> None:
        with self.db.write() as connection:
            connection.execute(delete(session_table).where(
                session_table.c.secret_hash == secret_hash(secret)))
