"""One front for everything inbound: HL7 v2 (MLLP, HTTP), Da Vinci notifications and
care-management plans and rosters share the message store, so replay and start-up recovery
dispatch on each message's channel."""

from __future__ import annotations

import logging
from typing import Any

from gateway.errors import Conflict, NotFound
from gateway.ingest import inbox as ib
from gateway.ingest.davinci import CHANNEL as FHIR_CHANNEL
from gateway.ingest.davinci import NotificationIngest
from gateway.ingest.hl7v2 import Hl7v2Ingest, Reply
from gateway.ingest.plans import KINDS as PLAN_CHANNELS
from gateway.ingest.plans import PlanIngest

log = logging.getLogger("gateway.ingest")


class InboundService:
    def __init__(self, hl7v2: Hl7v2Ingest, notifications: NotificationIngest,
                 plans: PlanIngest | None = None) -> None:
        self.hl7v2 = hl7v2
        self.notifications = notifications
        self.plans = plans
        self.inbox = hl7v2.inbox

    def replay(self, message_id: int) -> Reply | dict[str, Any]:
        """Process a failed message again with the current mappings: an HL7 v2 message
        answers its new ACK, a FHIR notification its OperationOutcome, a plan or roster
        its summary."""
        stored = self.inbox.get(message_id)
        if stored is None:
            raise NotFound(f"Inbound message {message_id} is not known.")
        if stored.status == ib.PROCESSED:
            raise Conflict(f"Inbound message {message_id} was processed already.")
        if stored.channel == FHIR_CHANNEL:
            return self.notifications.replay(message_id)
        if stored.channel in PLAN_CHANNELS:
            if self.plans is None:
                raise Conflict(f"Inbound message {message_id} is a {stored.channel}; "
                               "replay it through /ingest/messages/{id}/$replay.")
            return self.plans.replay(message_id).to_json()
        return self.hl7v2.replay(message_id)

    def recover(self) -> int:
        """Process every message stored but not processed (e.g. cut off by a crash)."""
        count = 0
        for stored in self.inbox.list(ib.RECEIVED, limit=1_000_000):
            try:
                self.replay(stored.id)
            except Exception:  # one bad message must not stop the others' recovery
                log.exception("recovering inbound message %s failed", stored.id)
            count += 1
        if count:
            log.info("recovered %d inbound messages left unprocessed", count)
        return count
