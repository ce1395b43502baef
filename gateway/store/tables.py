"""The database schema, as SQLModel tables.

``resource`` holds one row per (type, id) pointing at its current version;
``resource_version`` holds every version's JSON body exactly once (reads serve those bytes);
``idx_*`` are the search index, rewritten for the current version on every write;
``outbox`` receives one row per committed change in the same transaction (sync consumes it).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
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
metadata = SQLModel.metadata
