"""Prompt wake-up of delivery workers on PostgreSQL: ``LISTEN`` on the channel every
transaction that appended outbox rows notifies as it commits (store/db.py; PostgreSQL
sql-notify.html: notifications are delivered only on commit). Polling stays as the fallback
(DESIGN.md rule 5): a lost connection is reopened after a pause, and a notification missed
meanwhile is found by the next poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from gateway.store.db import OUTBOX_CHANNEL

log = logging.getLogger(__name__)


def conninfo(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy ``postgresql+psycopg`` URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: URL, wake: Callable[[], None], stop: asyncio.Event,
                 retry_seconds: float = 5.0) -> None:
    """Call ``wake`` on every outbox notification until ``stop`` is set."""
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(conninfo(url),
                                                            autocommit=True) as conn:
                await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                wake()  # anything committed before LISTEN took effect
                async for _ in conn.notifies():
                    wake()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the poll carries on meanwhile
            log.warning("LISTEN %s failed (%s); polling only, retrying in %g s",
                        OUTBOX_CHANNEL, error, retry_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_seconds)
