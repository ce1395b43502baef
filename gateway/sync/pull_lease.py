"""The pull lease: one worker at a time pulls a partner, across any number of gateway
processes, for the scheduled pull and ``pull now`` alike.

A worker takes the partner row's lease (``pull_owner``, ``pull_claimed_until``) with one
conditional UPDATE, renews it before every request to the partner, and checks it again in
the transaction that imports each page: if it lapsed (a stalled process) and another worker
took the partner over, the late worker's page rolls back instead of being imported twice.
Releasing the lease schedules the next pull (``pull_next_at``). A lease outlasts one token
fetch plus one search request, each bounded by the timeout (cf. the delivery lease,
queue.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.engine import Connection

from gateway.errors import Conflict
from gateway.store.db import Database
from gateway.store.tables import partner_table
from gateway.sync import partners

P = partner_table.c


class LeaseLost(Conflict):
    """Another worker took the partner over after this one's lease lapsed."""


def lease_seconds(timeout: float) -> float:
    """How long a lease lasts: a token fetch and a search request, plus a margin."""
    return 2 * timeout + 1.0


@dataclass
class Lease:
    """A held pull lease on one partner."""

    db: Database
    partner: partners.Partner
    seconds: float
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def take(self, *, due_only: bool) -> bool:
        """Take the lease if nobody holds it (and, for ``due_only``, the partner's next
        pull is due)."""
        now = time.time()
        condition = [P.id == self.partner.id, P.pull_claimed_until <= now]
        if due_only:
            condition.append(P.pull_next_at <= now)
        with self.db.write() as conn:
            return bool(conn.execute(update(partner_table).where(*condition).values(
                pull_owner=self.owner, pull_claimed_until=now + self.seconds)).rowcount)

    def renew(self) -> None:
        """Extend the lease before more work; raises LeaseLost if it is someone else's."""
        with self.db.write() as conn:
            self.hold(conn)

    def hold(self, conn: Connection) -> None:
        """Renew the lease inside ``conn``'s transaction, so that transaction's work is
        committed only while this worker holds the partner."""
        if not conn.execute(update(partner_table).where(
                P.id == self.partner.id, P.pull_owner == self.owner).values(
                pull_claimed_until=time.time() + self.seconds)).rowcount:
            raise LeaseLost(f"Another worker took over pulling partner "
                            f"{self.partner.name!r}.")

    def release(self, next_in: float | None = None) -> None:
        """Give the lease up; with ``next_in``, the next scheduled pull is that far off."""
        values: dict[str, object] = {"pull_owner": None, "pull_claimed_until": 0.0}
        if next_in is not None:
            values["pull_next_at"] = time.time() + next_in
        with self.db.write() as conn:
            conn.execute(update(partner_table).where(
                P.id == self.partner.id, P.pull_owner == self.owner).values(**values))


def take_now(db: Database, partner: partners.Partner, seconds: float) -> Lease:
    """The lease for a pull asked for now (``gateway partners pull``, ``$pull``); 409 while
    another worker is pulling the partner."""
    lease = Lease(db, partner, seconds)
    if not lease.take(due_only=False):
        raise Conflict(f"Partner {partner.name!r} is being pulled by another worker right "
                       "now; try again shortly.")
    return lease
