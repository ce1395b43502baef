"""Wiring of the inbound side for the CLI and the API: one ``InboundService`` per process.

The mapping folder is ``GATEWAY_MAPPINGS_DIR`` when set, else ``mappings/`` beside the
``gateway`` package (the source checkout and the container image).
"""

from __future__ import annotations

import asyncio

from gateway.config import Settings
from gateway.ingest.davinci import NotificationIngest
from gateway.ingest.hl7v2 import Hl7v2Ingest
from gateway.ingest.mllp import MAX_FRAME, Handler, MllpServer
from gateway.ingest.plans import PlanIngest
from gateway.ingest.service import InboundService
from gateway.mapping.rules import DEFAULT_MAPPINGS, mappings_dir
from gateway.rest.interactions import FhirService, Limits
from gateway.store.db import Database

__all__ = ["DEFAULT_MAPPINGS", "build_ingest", "mappings_dir", "mllp_handler", "run_mllp"]


def build_ingest(settings: Settings, database: Database,
                 service: FhirService | None = None) -> InboundService:
    service = service or FhirService(database, Limits(settings.default_page_size,
                                                      settings.max_page_size,
                                                      settings.max_include_results))
    base = (settings.base_url or "").rstrip("/")
    return InboundService(Hl7v2Ingest(database, service, mappings_dir(), base),
                          NotificationIngest(database, service, base),
                          PlanIngest(database, service, mappings_dir(), base))


def mllp_handler(ingest: InboundService, channel: str = "mllp") -> Handler:
    """The MLLP server's handler: one frame in, its ACK bytes (or None) out."""
    def handle(payload: bytes, truncated: bool) -> bytes | None:
        reply = ingest.hl7v2.receive(payload, channel, truncated=truncated)
        return reply.ack.encode("utf-8") if reply.ack is not None else None

    return handle


def run_mllp(ingest: InboundService, host: str, port: int, max_frame: int = MAX_FRAME) -> None:
    """Pick up messages left unprocessed, then listen until interrupted; frames larger than
    ``max_frame`` (GATEWAY_MAX_HL7_BYTES) close the connection."""
    ingest.recover()
    server = MllpServer(mllp_handler(ingest), host, port, max_frame)
    asyncio.run(server.serve_forever())
