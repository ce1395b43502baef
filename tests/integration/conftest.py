"""Fixtures shared by the integration tests of subscriptions and delivery (sync_support.py):
an app without the in-process worker, its client, and real HTTP receivers."""

from tests.integration.sync_support import (
    api,
    partner_database_url,
    partner_gateway,
    partner_postgres_database,
    receiver,
    sync_app,
    sync_settings,
)

__all__ = ["api", "partner_database_url", "partner_gateway", "partner_postgres_database",
           "receiver", "sync_app", "sync_settings"]
