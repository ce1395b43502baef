"""Units of work: the caller opens one, does its writes through the Repository, commits.

Nothing commits behind the caller's back: leaving the block without ``commit()`` (or with an
exception) rolls everything back, so a failed request leaves nothing half-written.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection

from gateway.store.db import Database
from gateway.store.repository import Repository


class UnitOfWork:
    """A write transaction and the Repository bound to it."""

    def __init__(self, db: Database, base_url: str = "") -> None:
        self.db = db
        self.base_url = base_url
        self._connection: Connection | None = None
        self.repository: Repository

    def __enter__(self) -> UnitOfWork:
        self._connection = self.db.engine.connect()
        try:
            self.db.begin_write(self._connection)
        except BaseException:
            self._connection.close()
            raise
        self.repository = Repository(self.db, self._connection, self.base_url)
        return self

    def commit(self) -> None:
        assert self._connection is not None
        self.repository.check_deferred_references()
        self._connection.commit()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._connection is not None
        try:
            if self._connection.in_transaction():
                self._connection.rollback()
        finally:
            self._connection.close()
            self._connection = None


class ReadSession:
    """A read-only connection and Repository (no write lock taken)."""

    def __init__(self, db: Database, base_url: str = "") -> None:
        self.db = db
        self.base_url = base_url
        self._connection: Connection | None = None
        self.repository: Repository

    def __enter__(self) -> Repository:
        self._connection = self.db.engine.connect()
        self.repository = Repository(self.db, self._connection, self.base_url)
        return self.repository

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._connection is not None
        self._connection.close()
        self._connection = None
