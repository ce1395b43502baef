"""The workflow runner: every committed Encounter and Task change, whatever wrote it (HL7 v2
ADT over MLLP or HTTP, a Da Vinci notification, the FHIR REST API, a plan import), goes
through the transition workflow rules (followups.py).

Why this is crash-safe and complete. The repository writes an outbox row in each change's
own transaction, so every committed change has one. The runner reads the rows after its own
cursor (``store/outbox.py``, cursor ``workflows``; gap-free on PostgreSQL), applies the
rules, writes the resulting Tasks and CarePlan changes through the Repository and moves its
cursor, all in ONE unit of work: a crash rolls all of it back and the next run reads the
same rows again; Task ids derived from (Encounter, rule) make a repeated run harmless.
Outbox rows are pruned only once this cursor has passed them. Its own writes append outbox
rows too, which the sync router turns into notifications (subscribers, care teams).

Each row is applied in a SAVEPOINT: a row the rules cannot apply is logged and passed, so
one bad resource never stops the workflows of every other patient.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from sqlalchemy.exc import DBAPIError

from gateway.config import Settings
from gateway.coordination.followups import FollowUps
from gateway.mapping.rules import mappings_dir
from gateway.mapping.workflowrules import WorkflowRules
from gateway.store.db import Database
from gateway.store.outbox import WORKFLOWS, OutboxCursor
from gateway.store.repository import Repository
from gateway.store.uow import UnitOfWork

log = logging.getLogger(__name__)
_HANDLED = ("Encounter", "Task")


class WorkflowRunner:
    """Consumes the outbox for the workflow rules, one batch per unit of work."""

    def __init__(self, db: Database, rules: WorkflowRules, *, base_url: str = "",
                 batch_size: int = 200, sweep_every: float = 300.0) -> None:
        self.db = db
        self.base_url = base_url
        self.followups = FollowUps(rules)
        self.cursor = OutboxCursor(db, WORKFLOWS, batch_size)
        self.sweep_every = sweep_every
        self._last_sweep = 0.0

    def run_until_idle(self) -> int:
        """Process until the outbox is consumed; the number of outbox rows consumed."""
        total = 0
        while (consumed := self.run_once()) > 0:
            total += consumed
        return total

    def run_once(self) -> int:
        """One batch; 0 when there was nothing to do (or another runner is busy)."""
        if not self.cursor.has_work():
            return 0
        self.cursor.ensure()
        with UnitOfWork(self.db, self.base_url) as uow:
            repo = uow.repository
            position = self.cursor.claim(repo.conn)
            if position is None:
                return 0
            rows = self.cursor.rows(repo.conn, position)
            for row in rows:
                self._apply_guarded(repo, row)
            if rows:
                self.cursor.advance(repo.conn, rows[-1].seq)
            uow.commit()
            return len(rows)

    def _apply_guarded(self, repo: Repository, row: Any) -> None:
        if row.type not in _HANDLED or row.action == "delete":
            return
        savepoint = repo.conn.begin_nested()
        try:
            written = self._apply(repo, row)
        except DBAPIError:
            raise  # the database's trouble, not the row's: the batch is tried again later
        except Exception:  # a row the rules cannot handle must not stall every other patient
            savepoint.rollback()
            log.exception("workflow rules failed on %s/%s/_history/%s; passed",
                          row.type, row.id, row.version_id)
            return
        savepoint.commit()
        if written:
            log.info("%s/%s: %s", row.type, row.id, ", ".join(written))

    def _apply(self, repo: Repository, row: Any) -> list[str]:
        body = repo.read_version(row.type, row.id, row.version_id).json()
        if row.type == "Encounter":
            return self.followups.on_encounter(repo, body, row.created_at)
        return self.followups.on_task(repo, body)

    # -- overdue sweep -----------------------------------------------------------------

    def sweep_overdue(self, today: date | None = None) -> list[str]:
        """Flag overdue Tasks now, in one unit of work; the versions written."""
        with UnitOfWork(self.db, self.base_url) as uow:
            written = self.followups.sweep_overdue(uow.repository, today)
            uow.commit()
        return written

    def sweep_if_due(self) -> int:
        """Run the overdue sweep at most every ``sweep_every`` seconds."""
        now = time.time()
        if now - self._last_sweep < self.sweep_every:
            return 0
        self._last_sweep = now
        return len(self.sweep_overdue())


def workflow_runner(db: Database, settings: Settings) -> WorkflowRunner:
    """The runner for ``gateway serve`` / ``gateway worker``: the rules of the mapping folder
    (``GATEWAY_MAPPINGS_DIR``), checked now so a broken rules file stops the start."""
    return WorkflowRunner(db, WorkflowRules.load(mappings_dir()),
                          base_url=(settings.base_url or "").rstrip("/"),
                          sweep_every=settings.workflow_sweep_seconds)
