"""Group commit: single-resource writes from many requests share one database commit.

A commit is the most expensive step of a small write: SQLite appends every changed page to
its write-ahead log, PostgreSQL flushes its WAL. Under concurrent load, requests that arrive
while a commit is in progress are queued; the writer thread then runs the whole queue in one
transaction, each job inside its own SAVEPOINT, and commits once. A job that fails rolls back
to its savepoint and reports its own error; the others are unaffected. No job is answered
before the commit that makes it durable, so "acknowledged" still means "stored".

This is the technique databases themselves use for their logs (group commit); here it sits
above the database so one commit serves many HTTP requests.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.errors import GatewayError
from gateway.store.db import Database
from gateway.store.repository import Repository
from gateway.store.uow import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[Repository], Any]
_STOP = object()


@dataclass
class _Pending:
    job: Job
    base_url: str
    future: Future[Any] = field(default_factory=Future)
    # The submitter's context (e.g. the reading client's access, store/access.py), so a
    # conditional write's search sees what the request may see.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class Writer:
    """Runs write jobs on one background thread, many per transaction."""

    def __init__(self, db: Database, *, max_batch: int = 64) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def execute(self, job: Callable[[Repository], T], base_url: str = "") -> T:
        """Run ``job`` with a Repository inside a shared transaction; return its result
        after the commit (or raise its error)."""
        return self.submit(job, base_url).result()

    def submit(self, job: Callable[[Repository], T], base_url: str = "") -> Future[T]:
        """Queue ``job``; the future resolves after the commit (``asyncio.wrap_future``
        lets an event loop wait for it without a thread of its own)."""
        pending = _Pending(job, base_url)
        self._ensure_started()
        self._queue.put(pending)
        return pending.future

    def stop(self) -> None:
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=10)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gateway-writer",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(item)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Pending]) -> None:
        log.debug("committing %d writes together", len(batch))
        try:
            finished = self._commit_together(batch)
        except Exception as error:  # the shared transaction failed as a whole
            if len(batch) == 1:
                _fail(batch[0], error)
                return
            log.warning("a group commit of %d writes failed (%s); retrying them one by one",
                        len(batch), error)
            for pending in batch:
                self._run_batch([pending])
            return
        for pending, outcome, failed in finished:
            if failed:
                _fail(pending, outcome)
            else:
                pending.future.set_result(outcome)

    def _commit_together(self, batch: list[_Pending]) -> list[tuple[_Pending, Any, bool]]:
        finished: list[tuple[_Pending, Any, bool]] = []
        with UnitOfWork(self.db) as uow:
            connection = uow.repository.conn
            run = self.db.statements.execute
            for pending in batch:
                # Plain SQL savepoints: SQLAlchemy's begin_nested() costs more than the SQL.
                run(connection, "SAVEPOINT job", {})
                try:
                    repository = Repository(self.db, connection, pending.base_url)
                    outcome = pending.context.run(pending.job, repository)
                    repository.check_deferred_references()
                except GatewayError as error:
                    run(connection, "ROLLBACK TO SAVEPOINT job", {})
                    run(connection, "RELEASE SAVEPOINT job", {})
                    finished.append((pending, error, True))
                    continue
                run(connection, "RELEASE SAVEPOINT job", {})
                finished.append((pending, outcome, False))
            uow.commit()
        return finished


def _fail(pending: _Pending, error: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(error)
