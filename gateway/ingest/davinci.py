"""Da Vinci Unsolicited Notifications received by ``POST /fhir/$process-message``.

Same guarantees as HL7 v2: the raw Bundle is committed before processing, a message seen
before (same sender endpoint and Bundle.identifier) changes nothing and is answered as then,
failures are kept with their reason and can be replayed. Success is 200 with an informational
OperationOutcome naming what was written (the IG's guidance.html "Reliable Delivery":
200/202/204 on success, an OperationOutcome on error).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.coordination.notifications import apply_notification
from gateway.errors import GatewayError, InvalidRequest, UnprocessableResource
from gateway.fhir import outcome as oo
from gateway.ingest import inbox as ib
from gateway.ingest.inbox import source_uri
from gateway.mapping.davinci import Notification, read_notification
from gateway.mapping.issues import MappingError, MessageRejected
from gateway.rest.interactions import FhirService
from gateway.store.db import Database
from gateway.store.uow import UnitOfWork

CHANNEL = "fhir"


class NotificationIngest:
    """Store, apply and answer Da Vinci notification Bundles."""

    def __init__(self, db: Database, service: FhirService, base: str = "") -> None:
        self.db = db
        self.inbox = ib.Inbox(db)
        self.service = service
        self.base = base

    def receive(self, raw: bytes) -> dict[str, Any]:
        """The OperationOutcome to answer with; GatewayError (4xx) when refused."""
        try:
            bundle = orjson.loads(raw)
            notification = read_notification(bundle if isinstance(bundle, dict) else {})
        except orjson.JSONDecodeError as error:
            self._keep_rejected(raw, f"not JSON: {error}", "Bundle")
            raise InvalidRequest(f"The body is not valid JSON: {error}",
                                 code="structure") from None
        except MessageRejected as error:
            self._keep_rejected(raw, error.message, error.location)
            raise InvalidRequest(error.message, expression=[error.location],
                                 code="structure") from None
        except MappingError as error:
            stored, _ = self.inbox.store(raw, channel=CHANNEL, message_type="notification")
            self._fail(stored.id, error)
            raise _unprocessable(error) from None
        stored, new = self.inbox.store(
            raw, channel=CHANNEL, sender=notification.sender,
            control_id=notification.message_id, message_type=notification.event,
            event_time=notification.timestamp)
        if not new and stored.status != ib.RECEIVED:
            return self._answer(stored)
        return self.process(stored.id, notification)

    def replay(self, message_id: int) -> dict[str, Any]:
        stored = self.inbox.get(message_id)
        assert stored is not None
        notification = read_notification(orjson.loads(stored.raw))
        return self.process(message_id, notification, replay=True)

    def process(self, message_id: int, notification: Notification, *,
                replay: bool = False) -> dict[str, Any]:
        try:
            return self._apply(message_id, notification, replay)
        except GatewayError as error:
            self._fail(message_id, error)
            raise _unprocessable(error) from None

    def _apply(self, message_id: int, notification: Notification,
               replay: bool) -> dict[str, Any]:
        with UnitOfWork(self.db, self.base) as uow:
            connection = uow.repository.conn
            current, due = self.inbox.claim(connection, message_id, replay=replay)
            if not due:
                return self._answer(current)
            late = self.inbox.newer_applied(connection, notification.visit_key,
                                            notification.timestamp, message_id)
            written = apply_notification(self.service, uow.repository, self.base,
                                         notification, source=source_uri(message_id),
                                         late=late)
            note = " (older than one applied already: the Encounter was kept)" if late else ""
            self.inbox.finish(connection, message_id, status=ib.PROCESSED, ack_code="AA",
                              ack=f"{notification.event} applied: {', '.join(written)}{note}",
                              resources=written, visit=notification.visit_key,
                              event_time=notification.timestamp)
            uow.commit()
        stored = self.inbox.get(message_id)
        assert stored is not None
        return self._answer(stored)

    def _fail(self, message_id: int, error: GatewayError) -> None:
        location = error.expression[0] if error.expression else None
        self.inbox.finish_now(message_id, status=ib.ERROR, ack_code="AE", ack=error.message,
                              error=error.message, location=location)

    def _keep_rejected(self, raw: bytes, message: str, location: str) -> None:
        self.inbox.store_rejected(raw, channel=CHANNEL, error=message, location=location,
                                  ack=message)

    @staticmethod
    def _answer(stored: ib.StoredMessage) -> dict[str, Any]:
        if stored.status != ib.PROCESSED:
            raise UnprocessableResource(stored.error or "The message could not be applied.",
                                        expression=[stored.error_location]
                                        if stored.error_location else None)
        return oo.information(f"Message {stored.id}: {stored.ack}")


def _unprocessable(error: GatewayError) -> GatewayError:
    if error.status < 500 and not isinstance(error, MappingError):
        return error
    return UnprocessableResource(error.message, expression=error.expression or None)
