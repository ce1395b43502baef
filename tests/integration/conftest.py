"""Fixtures shared by the integration tests of subscriptions and delivery (sync_support.py):
an app without the in-process worker, its client, and real HTTP receivers; and a gateway
with authorization on (auth_support.py)."""

from tests.integration.auth_support import auth_app, auth_http
from tests.integration.sync_support import (
    api,
    partner_database_url,
    partner_gateway,
    partner_postgres_database,
    receiver,
    sync_app,
    sync_settings,
)

__all__ = ["api", "auth_app", "auth_http", "partner_database_url", "partner_gateway",
           "partner_postgres_database", "receiver", "sync_app", "sync_settings"]
